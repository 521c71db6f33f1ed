//! `VFIO_USER_VERSION`: the version handshake and its JSON capabilities.
//!
//! "Upon establishing a connection, the client must send a `VFIO_USER_VERSION` message proposing a
//! protocol version and a set of capabilities. The server compares these with the versions and
//! capabilities it supports and sends a `VFIO_USER_VERSION` reply according to the following
//! rules": "The major version in the reply must be the same as proposed", "The minor version in
//! the reply must be equal to or less than the minor version proposed", "The capability list must
//! be a subset of those proposed."
//!
//! The version data is "an optional UTF-8 encoded JSON byte array" "(including terminating NUL)";
//! every member is optional, with the defaults of the spec's table: `max_msg_fds` "If not
//! specified then the receiver must assume a value of `1`", `max_data_xfer_size` "a default value
//! of 1048576 bytes", `max_dma_maps` "a value of 65535 (64k-1)", `pgsizes` "a default value of
//! supporting only 4k pages". Members of the wrong type are refused (`EINVAL`); unknown members are
//! ignored, for forward compatibility. `migration` and `twin_socket` are parsed and never granted
//! (this implementation has neither); `write_multiple` is granted when proposed.
//!
//! The reply always states the server's numeric limits (`max_msg_fds`, `max_data_xfer_size`,
//! `max_dma_maps`, `pgsizes`), each no larger than the client proposed (QEMU's client checks that
//! the server "can only lower" them); libvfio-user likewise always sends its limits. Feature
//! capabilities appear only when proposed and granted.

use super::{ProtoError, split};
use serde_json::{Map, Value, json};
use uvfio_abi::vfio_user::VfioUserVersion;
use zerocopy::IntoBytes;

/// The major version this implementation speaks (QEMU's `VFIO_USER_MAJOR_VER`).
pub const MAJOR: u16 = 0;
/// The highest minor version it speaks (QEMU's `VFIO_USER_MINOR_VER`).
pub const MINOR: u16 = 0;
/// `max_msg_fds` when not stated.
pub const DEFAULT_MAX_MSG_FDS: u64 = 1;
/// `max_data_xfer_size` when not stated.
pub const DEFAULT_MAX_DATA_XFER_SIZE: u64 = 1 << 20;
/// `max_dma_maps` when not stated.
pub const DEFAULT_MAX_DMA_MAPS: u64 = 65535;
/// `pgsizes` when not stated: 4 KiB only.
pub const DEFAULT_PGSIZES: u64 = 4096;

/// `migration` capability members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migration {
    /// `pgsize`.
    pub pgsize: Option<u64>,
    /// `max_bitmap_size`.
    pub max_bitmap_size: Option<u64>,
}

/// `twin_socket` capability members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TwinSocket {
    /// "Indicates whether the sender supports twin-socket mode."
    pub supported: Option<bool>,
    /// "an index in the file descriptor array included with the message" (reply only).
    pub fd_index: Option<u64>,
}

/// The `capabilities` object, as sent (absent members are `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// "Maximum number of file descriptors that can be received by the sender in one message."
    pub max_msg_fds: Option<u64>,
    /// "Maximum `count` for data transfer messages".
    pub max_data_xfer_size: Option<u64>,
    /// "Maximum number DMA map windows that can be valid simultaneously."
    pub max_dma_maps: Option<u64>,
    /// "Page sizes supported in DMA map operations or'ed together."
    pub pgsizes: Option<u64>,
    /// Migration parameters (earlier revisions; QEMU still sends them).
    pub migration: Option<Migration>,
    /// "Parameters for twin-socket mode".
    pub twin_socket: Option<TwinSocket>,
    /// "`VFIO_USER_REGION_WRITE_MULTI` messages are supported if the value is `true`."
    pub write_multiple: Option<bool>,
}

impl Capabilities {
    /// The JSON version data (without the NUL).
    pub fn to_json(&self) -> String {
        let mut caps = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                caps.insert(k.to_owned(), v);
            }
        };
        put("max_msg_fds", self.max_msg_fds.map(Value::from));
        put("max_data_xfer_size", self.max_data_xfer_size.map(Value::from));
        put("max_dma_maps", self.max_dma_maps.map(Value::from));
        put("pgsizes", self.pgsizes.map(Value::from));
        put(
            "migration",
            self.migration.map(|m| {
                let mut o = Map::new();
                if let Some(p) = m.pgsize {
                    o.insert("pgsize".into(), p.into());
                }
                if let Some(b) = m.max_bitmap_size {
                    o.insert("max_bitmap_size".into(), b.into());
                }
                Value::Object(o)
            }),
        );
        put(
            "twin_socket",
            self.twin_socket.map(|t| {
                let mut o = Map::new();
                if let Some(s) = t.supported {
                    o.insert("supported".into(), s.into());
                }
                if let Some(i) = t.fd_index {
                    o.insert("fd_index".into(), i.into());
                }
                Value::Object(o)
            }),
        );
        put("write_multiple", self.write_multiple.map(Value::from));
        json!({ "capabilities": caps }).to_string()
    }

    /// Parses the version data (the JSON text, NUL already stripped).
    pub fn from_json(text: &str) -> Result<Capabilities, ProtoError> {
        let top: Value = serde_json::from_str(text).map_err(ProtoError::Json)?;
        let top = top.as_object().ok_or(ProtoError::JsonShape {
            field: "version data",
            expected: "an object",
        })?;
        let Some(caps) = top.get("capabilities") else {
            return Ok(Capabilities::default());
        };
        let caps = object(caps, "capabilities")?;
        let migration = caps
            .get("migration")
            .map(|m| -> Result<Migration, ProtoError> {
                let m = object(m, "migration")?;
                Ok(Migration {
                    pgsize: number(m, "pgsize", "migration.pgsize")?,
                    max_bitmap_size: number(m, "max_bitmap_size", "migration.max_bitmap_size")?,
                })
            })
            .transpose()?;
        let twin_socket = caps
            .get("twin_socket")
            .map(|t| -> Result<TwinSocket, ProtoError> {
                let t = object(t, "twin_socket")?;
                Ok(TwinSocket {
                    supported: boolean(t, "supported", "twin_socket.supported")?,
                    fd_index: number(t, "fd_index", "twin_socket.fd_index")?,
                })
            })
            .transpose()?;
        Ok(Capabilities {
            max_msg_fds: number(caps, "max_msg_fds", "max_msg_fds")?,
            max_data_xfer_size: number(caps, "max_data_xfer_size", "max_data_xfer_size")?,
            max_dma_maps: number(caps, "max_dma_maps", "max_dma_maps")?,
            pgsizes: number(caps, "pgsizes", "pgsizes")?,
            migration,
            twin_socket,
            write_multiple: boolean(caps, "write_multiple", "write_multiple")?,
        })
    }
}

fn object<'a>(v: &'a Value, field: &'static str) -> Result<&'a Map<String, Value>, ProtoError> {
    v.as_object().ok_or(ProtoError::JsonShape {
        field,
        expected: "an object",
    })
}

fn number(o: &Map<String, Value>, key: &str, field: &'static str) -> Result<Option<u64>, ProtoError> {
    o.get(key)
        .map(|v| {
            v.as_u64().ok_or(ProtoError::JsonShape {
                field,
                expected: "a non-negative integer",
            })
        })
        .transpose()
}

fn boolean(o: &Map<String, Value>, key: &str, field: &'static str) -> Result<Option<bool>, ProtoError> {
    o.get(key)
        .map(|v| {
            v.as_bool().ok_or(ProtoError::JsonShape {
                field,
                expected: "a boolean",
            })
        })
        .transpose()
}

/// A `VFIO_USER_VERSION` message (request or reply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version {
    /// "version major".
    pub major: u16,
    /// "version minor".
    pub minor: u16,
    /// The capabilities (all `None` when there is no version data).
    pub caps: Capabilities,
}

impl Version {
    /// Decodes a payload that came with `fds` file descriptors (none allowed: this
    /// implementation negotiates no twin socket).
    pub fn decode(payload: &[u8], fds: usize) -> Result<Version, ProtoError> {
        const WHAT: &str = "VFIO_USER_VERSION";
        super::no_fds(WHAT, fds)?;
        let (v, data): (VfioUserVersion, _) = split(WHAT, payload)?;
        let caps = if data.is_empty() {
            Capabilities::default()
        } else {
            // "variable (including terminating NUL)": the NUL ends the data, and only there.
            let text = data.strip_suffix(&[0]).ok_or(ProtoError::NotTerminated)?;
            let text = std::str::from_utf8(text).map_err(|_| ProtoError::JsonShape {
                field: "version data",
                expected: "UTF-8",
            })?;
            Capabilities::from_json(text)?
        };
        Ok(Version {
            major: v.major,
            minor: v.minor,
            caps,
        })
    }

    /// The payload: the two versions, then the JSON and its NUL.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = VfioUserVersion {
            major: self.major,
            minor: self.minor,
        }
        .as_bytes()
        .to_vec();
        out.extend_from_slice(self.caps.to_json().as_bytes());
        out.push(0);
        out
    }
}

/// What the server can take: its side of the negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// File descriptors the server receives in one message.
    pub max_msg_fds: u64,
    /// Largest data transfer the server takes.
    pub max_data_xfer_size: u64,
    /// DMA regions the server keeps at once.
    pub max_dma_maps: u64,
    /// Page sizes the server maps with (any power of two from 4 KiB up: an IOAS maps at 4 KiB
    /// granularity).
    pub pgsizes: u64,
}

/// The outcome of a handshake: what each side may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The minor version in force.
    pub minor: u16,
    /// File descriptors the server accepts in one message.
    pub max_msg_fds: u64,
    /// File descriptors the client accepts in one message (what the server may send).
    pub client_max_msg_fds: u64,
    /// Largest `count` of a data transfer, either way.
    pub max_data_xfer_size: u64,
    /// DMA regions at once.
    pub max_dma_maps: u64,
    /// Page sizes in force.
    pub pgsizes: u64,
    /// `VFIO_USER_REGION_WRITE_MULTI` may be used.
    pub write_multiple: bool,
}

impl Negotiated {
    /// The smallest page size in force: what DMA addresses, sizes and offsets align to.
    pub fn page_size(&self) -> u64 {
        // `pgsizes` is never 0 after negotiation; 4 KiB is the floor either way.
        1u64 << self.pgsizes.trailing_zeros().clamp(12, 63)
    }
}

/// The server's answer to the client's `proposal`: the reply to send and what is in force, or the
/// refusal (after which "it closes the connection").
pub fn negotiate(proposal: &Version, ours: &ServerLimits) -> Result<(Version, Negotiated), ProtoError> {
    if proposal.major != MAJOR {
        return Err(ProtoError::Major {
            major: proposal.major,
        });
    }
    let caps = &proposal.caps;
    let proposed_pgsizes = caps.pgsizes.unwrap_or(DEFAULT_PGSIZES);
    let pgsizes = proposed_pgsizes & ours.pgsizes;
    if pgsizes == 0 {
        return Err(ProtoError::PageSizes {
            proposed: proposed_pgsizes,
        });
    }
    // "The minor version in the reply must be equal to or less than the minor version proposed"
    // (a no-op while MINOR is 0, but the rule).
    #[allow(clippy::unnecessary_min_or_max)]
    let minor = proposal.minor.min(MINOR);
    let negotiated = Negotiated {
        minor,
        max_msg_fds: ours.max_msg_fds,
        client_max_msg_fds: caps.max_msg_fds.unwrap_or(DEFAULT_MAX_MSG_FDS),
        max_data_xfer_size: ours
            .max_data_xfer_size
            .min(caps.max_data_xfer_size.unwrap_or(DEFAULT_MAX_DATA_XFER_SIZE)),
        max_dma_maps: ours
            .max_dma_maps
            .min(caps.max_dma_maps.unwrap_or(DEFAULT_MAX_DMA_MAPS)),
        pgsizes,
        write_multiple: caps.write_multiple == Some(true),
    };
    let reply = Version {
        major: MAJOR,
        minor: negotiated.minor,
        caps: Capabilities {
            max_msg_fds: Some(negotiated.max_msg_fds),
            max_data_xfer_size: Some(negotiated.max_data_xfer_size),
            max_dma_maps: Some(negotiated.max_dma_maps),
            pgsizes: Some(negotiated.pgsizes),
            migration: None,
            twin_socket: None,
            write_multiple: negotiated.write_multiple.then_some(true),
        },
    };
    Ok((reply, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: ServerLimits = ServerLimits {
        max_msg_fds: 16,
        max_data_xfer_size: 1 << 20,
        max_dma_maps: 100,
        pgsizes: !0xfff,
    };

    fn payload(major: u16, minor: u16, json: &[u8]) -> Vec<u8> {
        let mut p = VfioUserVersion { major, minor }.as_bytes().to_vec();
        p.extend_from_slice(json);
        p
    }

    #[test]
    fn qemu_proposal_negotiates() {
        let json = br#"{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"migration":{"pgsize":4096,"max_bitmap_size":1048576},"write_multiple":true}}"#;
        let mut p = payload(0, 0, json);
        p.push(0);
        let v = Version::decode(&p, 0).unwrap();
        assert_eq!(v.caps.max_msg_fds, Some(8));
        assert_eq!(v.caps.migration.and_then(|m| m.pgsize), Some(4096));
        let (reply, n) = negotiate(&v, &OURS).unwrap();
        assert_eq!((n.max_dma_maps, n.client_max_msg_fds, n.pgsizes), (100, 8, 4096));
        assert!(n.write_multiple && reply.caps.migration.is_none());
        let back = Version::decode(&reply.encode(), 0).unwrap();
        assert_eq!(back, reply);
    }

    #[test]
    fn malformed_version_data_is_refused() {
        let bad: [&[u8]; 7] = [
            b"{}",                                          // no NUL
            b"{\0",                                         // not JSON
            b"[]\0",                                        // not an object
            b"{\"capabilities\":3}\0",                      // not an object
            b"{\"capabilities\":{\"max_msg_fds\":-1}}\0",   // negative
            b"{\"capabilities\":{\"pgsizes\":\"4k\"}}\0",   // string
            b"{\"capabilities\":{\"write_multiple\":1}}\0", // not a boolean
        ];
        for json in bad {
            let e = Version::decode(&payload(0, 0, json), 0).unwrap_err();
            assert_eq!(e.errno(), rustix::io::Errno::INVAL, "{json:?}");
        }
        assert!(Version::decode(&payload(0, 0, b""), 1).is_err());
        assert!(Version::decode(&[0, 0, 0], 0).is_err());
        let v = Version::decode(&payload(1, 0, b""), 0).unwrap();
        assert!(matches!(
            negotiate(&v, &OURS),
            Err(ProtoError::Major { major: 1 })
        ));
        let v = Version::decode(&payload(0, 0, b"{\"capabilities\":{\"pgsizes\":2048}}\0"), 0).unwrap();
        assert!(matches!(negotiate(&v, &OURS), Err(ProtoError::PageSizes { .. })));
    }

    #[test]
    fn defaults_and_minor() {
        let v = Version::decode(&payload(0, 5, b""), 0).unwrap();
        let (reply, n) = negotiate(&v, &OURS).unwrap();
        assert_eq!(reply.minor, 0);
        assert_eq!((n.client_max_msg_fds, n.pgsizes, n.page_size()), (1, 4096, 4096));
        assert!(!n.write_multiple && reply.caps.write_multiple.is_none());
    }
}
