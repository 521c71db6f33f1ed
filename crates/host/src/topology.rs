//! The emulated host's PCI topology and its IOMMU groups.
//!
//! A [`TopologyConfig`] lists PCI functions (endpoints and bridges) by bus/device/function. Bus 0 is the root bus
//! (the root complex); every other bus is the secondary bus of exactly one bridge. [`Topology::new`] validates the
//! config and computes the IOMMU groups as Linux's `pci_device_group()` (drivers/iommu/iommu.c) does:
//!
//! 1. **DMA aliases** (`pci_for_each_dma_alias`, drivers/pci/search.c): walking from the device's bus up to the root
//!    bus, a PCIe-to-PCI bridge takes ownership of its subordinates' requests with the requester id
//!    `secondary:00.0`, a conventional PCI bridge with its own requester id; root ports and switch ports forward the
//!    device's own id. A device joins the group of every bridge that aliases it.
//! 2. **ACS isolation upstream**: from the topmost alias, for each bridge above, if `pci_acs_path_enabled(bridge)`
//!    (every port from it to the root bus has ACS) the walk stops; otherwise the device joins that bridge's group.
//! 3. **Multifunction**: a multifunction function without ACS shares a group with the other functions of its slot
//!    that lack ACS (`get_pci_function_alias_group`), applied at the point reached by steps 1–2.
//!
//! `pci_acs_enabled()` is modelled as in drivers/pci/pci.c: conventional PCI functions and PCIe-to-PCI bridges
//! never have ACS; root ports and downstream ports have it when configured so; other PCIe functions need it only
//! when they are multifunction (a single-function endpoint or upstream port counts as isolated).
//!
//! Simplified: the kernel's answer depends on probe order ("use the first existing group found"); here every
//! relation is an edge and groups are the connected components, which is the order-independent closure. Not
//! modelled: device-specific ACS and DMA-alias quirks (`dma_alias_mask`, `pci_devs_are_dma_aliases`),
//! `PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT`, PCI-X-to-PCIe bridges, ARI, multiple segments or root buses, and the 2025
//! rework of switch grouping (`BUS_DATA_PCI_NON_ISOLATED`) that widens groups under a switch lacking ACS; here,
//! as in the classic algorithm, devices under two different downstream ports stay apart even without ACS.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bus number of the root bus (the root complex).
pub const ROOT_BUS: u8 = 0;

/// A PCI bus/device/function on segment 0, written `bb:dd.f` in hex as `lspci` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bdf {
    bus: u8,
    device: u8,
    function: u8,
}

impl Bdf {
    /// A BDF; `None` unless `device < 32` and `function < 8`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device < 32 && function < 8 {
            Some(Self {
                bus,
                device,
                function,
            })
        } else {
            None
        }
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// The device (slot) number, below 32.
    pub const fn device(self) -> u8 {
        self.device
    }

    /// The function number, below 8.
    pub const fn function(self) -> u8 {
        self.function
    }

    /// `devfn` as Linux packs it: `device << 3 | function`.
    pub const fn devfn(self) -> u8 {
        (self.device << 3) | self.function
    }

    /// The requester id this function puts in its own transactions (`pci_dev_id()`).
    pub const fn requester_id(self) -> RequesterId {
        RequesterId(((self.bus as u16) << 8) | self.devfn() as u16)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }
}

impl FromStr for Bdf {
    type Err = TopologyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TopologyError::BadBdf(s.to_owned());
        let (bus, rest) = s.split_once(':').ok_or_else(bad)?;
        let (dev, func) = rest.split_once('.').ok_or_else(bad)?;
        let hex = |t: &str, max_len: usize| {
            if t.is_empty() || t.len() > max_len {
                return Err(bad());
            }
            u8::from_str_radix(t, 16).map_err(|_| bad())
        };
        Bdf::new(hex(bus, 2)?, hex(dev, 2)?, hex(func, 1)?).ok_or_else(bad)
    }
}

impl TryFrom<String> for Bdf {
    type Error = TopologyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Bdf> for String {
    fn from(b: Bdf) -> Self {
        b.to_string()
    }
}

/// A 16-bit PCI requester id (`bus << 8 | devfn`), the source id an IOMMU sees on a DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequesterId(pub u16);

impl RequesterId {
    /// The BDF this requester id names.
    pub const fn bdf(self) -> Bdf {
        let [bus, devfn] = self.0.to_be_bytes();
        Bdf {
            bus,
            device: devfn >> 3,
            function: devfn & 7,
        }
    }
}

impl fmt::Display for RequesterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bdf().fmt(f)
    }
}

/// A vendor:device id pair, written `vvvv:dddd` in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PciId {
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
}

impl PciId {
    /// QEMU's `edu` educational device, `1234:11e8`.
    pub const EDU: PciId = PciId {
        vendor: 0x1234,
        device: 0x11e8,
    };
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.device)
    }
}

impl FromStr for PciId {
    type Err = TopologyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TopologyError::BadPciId(s.to_owned());
        let (v, d) = s.split_once(':').ok_or_else(bad)?;
        let hex = |t: &str| {
            if t.len() != 4 {
                return Err(bad());
            }
            u16::from_str_radix(t, 16).map_err(|_| bad())
        };
        Ok(PciId {
            vendor: hex(v)?,
            device: hex(d)?,
        })
    }
}

impl TryFrom<String> for PciId {
    type Error = TopologyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PciId> for String {
    fn from(p: PciId) -> Self {
        p.to_string()
    }
}

/// What a function is, as far as routing and isolation go (Linux's `pci_pcie_type()` plus conventional PCI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionKind {
    /// A device function that issues DMA (PCIe endpoint, RC-integrated endpoint, or conventional PCI device).
    Endpoint,
    /// A PCIe root port; sits on the root bus.
    RootPort,
    /// A PCIe switch upstream port; sits below a root port or a downstream port.
    UpstreamPort,
    /// A PCIe switch downstream port; sits on a switch's internal bus (below an upstream port).
    DownstreamPort,
    /// A PCIe-to-PCI/PCI-X bridge: forwards its subordinates' requests as `secondary:00.0`.
    PcieToPciBridge,
    /// A conventional PCI-to-PCI bridge: forwards its subordinates' requests with its own requester id.
    PciBridge,
}

impl FunctionKind {
    /// Whether this function is a bridge (has a secondary bus).
    pub const fn is_bridge(self) -> bool {
        !matches!(self, FunctionKind::Endpoint)
    }

    /// "a" or "an", to go before the name.
    fn article(self) -> &'static str {
        if matches!(self, FunctionKind::Endpoint | FunctionKind::UpstreamPort) {
            "an"
        } else {
            "a"
        }
    }

    fn name(self) -> &'static str {
        match self {
            FunctionKind::Endpoint => "endpoint",
            FunctionKind::RootPort => "root port",
            FunctionKind::UpstreamPort => "upstream port",
            FunctionKind::DownstreamPort => "downstream port",
            FunctionKind::PcieToPciBridge => "PCIe-to-PCI bridge",
            FunctionKind::PciBridge => "PCI bridge",
        }
    }
}

impl fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One PCI function of the config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// Where it sits.
    pub bdf: Bdf,
    /// Vendor and device id.
    pub id: PciId,
    /// Endpoint or which kind of bridge.
    pub kind: FunctionKind,
    /// The bus behind a bridge; required for bridges, absent for endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_bus: Option<u8>,
    /// The header's multifunction bit.
    #[serde(default)]
    pub multifunction: bool,
    /// Whether the function has ACS with Source Validation, Request and Completion Redirect and Upstream
    /// Forwarding enabled (Linux's `REQ_ACS_FLAGS`). Meaningful for root / downstream ports and multifunction
    /// functions; conventional PCI functions never have ACS whatever this says.
    #[serde(default)]
    pub acs: bool,
}

impl FunctionConfig {
    /// A single-function endpoint without ACS.
    pub fn endpoint(bdf: Bdf, id: PciId) -> Self {
        Self {
            bdf,
            id,
            kind: FunctionKind::Endpoint,
            secondary_bus: None,
            multifunction: false,
            acs: false,
        }
    }

    /// A bridge of `kind` whose secondary bus is `secondary_bus`, without ACS.
    pub fn bridge(bdf: Bdf, id: PciId, kind: FunctionKind, secondary_bus: u8) -> Self {
        Self {
            bdf,
            id,
            kind,
            secondary_bus: Some(secondary_bus),
            multifunction: false,
            acs: false,
        }
    }
}

/// A whole PCI topology as configured; the default is one edu-like endpoint `1234:11e8` at `00:02.0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyConfig {
    /// Every function, in any order.
    pub functions: Vec<FunctionConfig>,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        let bdf = Bdf {
            bus: ROOT_BUS,
            device: 2,
            function: 0,
        };
        Self {
            functions: vec![FunctionConfig::endpoint(bdf, PciId::EDU)],
        }
    }
}

impl TopologyConfig {
    /// Parses a JSON config.
    pub fn from_json(json: &str) -> Result<Self, TopologyError> {
        serde_json::from_str(json).map_err(|e| TopologyError::Parse(e.to_string()))
    }

    /// The config as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Why a topology config was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopologyError {
    /// The JSON did not parse or did not match the schema.
    #[error("topology config does not parse: {0}")]
    Parse(String),
    /// A BDF string is not `bb:dd.f` with device < 0x20 and function < 8.
    #[error("bad PCI address {0:?}: expected bb:dd.f in hex, device below 0x20, function below 8")]
    BadBdf(String),
    /// A vendor:device string is not `vvvv:dddd`.
    #[error("bad PCI id {0:?}: expected vvvv:dddd in hex")]
    BadPciId(String),
    /// Two functions at the same address.
    #[error("two functions at {0}")]
    DuplicateBdf(Bdf),
    /// A function sits on a bus that is neither the root bus nor any bridge's secondary bus.
    #[error("{bdf} sits on bus {bus:02x}, which no bridge provides")]
    UnknownBus {
        /// The function.
        bdf: Bdf,
        /// Its bus.
        bus: u8,
    },
    /// A bridge without `secondary_bus`.
    #[error("{bdf} is a {kind} but has no secondary_bus")]
    MissingSecondaryBus {
        /// The bridge.
        bdf: Bdf,
        /// Its kind.
        kind: FunctionKind,
    },
    /// An endpoint with a `secondary_bus`.
    #[error("{0} is an endpoint but has a secondary_bus")]
    UnexpectedSecondaryBus(Bdf),
    /// A bridge claims the root bus as its secondary bus.
    #[error("{0} claims bus 00, the root bus, as its secondary bus")]
    SecondaryIsRootBus(Bdf),
    /// Two bridges claim the same secondary bus.
    #[error("bus {bus:02x} is the secondary bus of both {first} and {second}")]
    DuplicateSecondaryBus {
        /// The bus.
        bus: u8,
        /// The first bridge claiming it.
        first: Bdf,
        /// The second bridge claiming it.
        second: Bdf,
    },
    /// Following bridges upward from a bus never reaches the root bus.
    #[error("bus {0:02x} is its own ancestor: the bridges above it form a loop")]
    BusLoop(u8),
    /// A PCIe port at a place the PCIe hierarchy does not allow.
    #[error("{bdf}: {} {kind} cannot sit {place}", kind.article())]
    MisplacedPort {
        /// The port.
        bdf: Bdf,
        /// Its kind.
        kind: FunctionKind,
        /// Where it was found, in words.
        place: String,
    },
    /// A non-zero device number below a root or downstream port, whose link holds only device 0.
    #[error("{bdf}: only device 00 can sit below the {port_kind} {port} (a PCIe link has one device)")]
    NotDeviceZeroBelowPort {
        /// The function.
        bdf: Bdf,
        /// The port above it.
        port: Bdf,
        /// The port's kind.
        port_kind: FunctionKind,
    },
    /// A function other than 0 in a slot with no function 0 (Linux never scans it).
    #[error("{0}: slot has no function 0, so this function would never be found")]
    MissingFunctionZero(Bdf),
    /// A function other than 0 in a slot whose function 0 is not multifunction (Linux never scans it).
    #[error("{bdf}: function 0 of this slot is not multifunction, so this function would never be found")]
    NotMultifunction {
        /// The function.
        bdf: Bdf,
    },
}

/// An IOMMU group number: small, dense, in the order of each group's lowest BDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One IOMMU group: the functions that cannot be isolated from each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IommuGroup {
    /// Its number.
    pub id: GroupId,
    /// Members, sorted by BDF; bridges and ports are members too, as in Linux.
    pub members: Vec<Bdf>,
}

/// A validated PCI topology with its IOMMU groups.
#[derive(Clone, Debug)]
pub struct Topology {
    functions: BTreeMap<Bdf, FunctionConfig>,
    /// secondary bus → the bridge providing it.
    bridge_of_bus: HashMap<u8, Bdf>,
    groups: Vec<IommuGroup>,
    group_of: BTreeMap<Bdf, GroupId>,
}

impl Default for Topology {
    fn default() -> Self {
        match Topology::new(TopologyConfig::default()) {
            Ok(t) => t,
            Err(e) => unreachable!("the default topology is valid: {e}"),
        }
    }
}

impl Topology {
    /// Validates `config` and computes its IOMMU groups.
    pub fn new(config: TopologyConfig) -> Result<Self, TopologyError> {
        let mut functions = BTreeMap::new();
        for f in config.functions {
            let bdf = f.bdf;
            if functions.insert(bdf, f).is_some() {
                return Err(TopologyError::DuplicateBdf(bdf));
            }
        }
        let mut bridge_of_bus: HashMap<u8, Bdf> = HashMap::new();
        for f in functions.values() {
            match (f.kind.is_bridge(), f.secondary_bus) {
                (true, None) => {
                    return Err(TopologyError::MissingSecondaryBus {
                        bdf: f.bdf,
                        kind: f.kind,
                    });
                }
                (false, Some(_)) => return Err(TopologyError::UnexpectedSecondaryBus(f.bdf)),
                (false, None) => {}
                (true, Some(ROOT_BUS)) => return Err(TopologyError::SecondaryIsRootBus(f.bdf)),
                (true, Some(bus)) => {
                    if let Some(&first) = bridge_of_bus.get(&bus) {
                        return Err(TopologyError::DuplicateSecondaryBus {
                            bus,
                            first,
                            second: f.bdf,
                        });
                    }
                    bridge_of_bus.insert(bus, f.bdf);
                }
            }
        }
        let mut t = Self {
            functions,
            bridge_of_bus,
            groups: Vec::new(),
            group_of: BTreeMap::new(),
        };
        t.validate_placement()?;
        t.compute_groups();
        Ok(t)
    }

    /// Parses and validates a JSON config.
    pub fn from_json(json: &str) -> Result<Self, TopologyError> {
        Self::new(TopologyConfig::from_json(json)?)
    }

    fn validate_placement(&self) -> Result<(), TopologyError> {
        for f in self.functions.values() {
            let bus = f.bdf.bus;
            if bus != ROOT_BUS && !self.bridge_of_bus.contains_key(&bus) {
                return Err(TopologyError::UnknownBus { bdf: f.bdf, bus });
            }
        }
        // Every bus must reach the root bus by following bridges upward.
        for &start in self.bridge_of_bus.keys() {
            let mut bus = start;
            let mut steps = 0usize;
            while bus != ROOT_BUS {
                steps += 1;
                if steps > self.bridge_of_bus.len() {
                    return Err(TopologyError::BusLoop(start));
                }
                bus = self.bridge_of_bus[&bus].bus;
            }
        }
        for f in self.functions.values() {
            let parent = self.upstream_bridge(f.bdf);
            let parent_kind = parent.map(|p| self.functions[&p].kind);
            let place = match parent_kind {
                None => "on the root bus".to_owned(),
                Some(k) => format!("below {} {k}", k.article()),
            };
            let ok = match f.kind {
                FunctionKind::RootPort => parent_kind.is_none(),
                FunctionKind::UpstreamPort => {
                    matches!(
                        parent_kind,
                        Some(FunctionKind::RootPort | FunctionKind::DownstreamPort)
                    )
                }
                FunctionKind::DownstreamPort => parent_kind == Some(FunctionKind::UpstreamPort),
                FunctionKind::Endpoint | FunctionKind::PcieToPciBridge | FunctionKind::PciBridge => {
                    parent_kind != Some(FunctionKind::UpstreamPort)
                }
            };
            if !ok {
                return Err(TopologyError::MisplacedPort {
                    bdf: f.bdf,
                    kind: f.kind,
                    place,
                });
            }
            if let (Some(port), Some(port_kind @ (FunctionKind::RootPort | FunctionKind::DownstreamPort))) =
                (parent, parent_kind)
            {
                if f.bdf.device != 0 {
                    return Err(TopologyError::NotDeviceZeroBelowPort {
                        bdf: f.bdf,
                        port,
                        port_kind,
                    });
                }
            }
            if f.bdf.function != 0 {
                let fn0 = Bdf { function: 0, ..f.bdf };
                match self.functions.get(&fn0) {
                    None => return Err(TopologyError::MissingFunctionZero(f.bdf)),
                    Some(z) if !z.multifunction => {
                        return Err(TopologyError::NotMultifunction { bdf: f.bdf });
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The bridge whose secondary bus `bdf` sits on (`bus->self`), `None` on the root bus.
    pub fn upstream_bridge(&self, bdf: Bdf) -> Option<Bdf> {
        self.bridge_of_bus.get(&bdf.bus).copied()
    }

    /// Whether a function is conventional PCI: behind a PCIe-to-PCI or PCI bridge somewhere above it, or a
    /// conventional PCI bridge itself.
    fn is_conventional(&self, bdf: Bdf) -> bool {
        if self.functions[&bdf].kind == FunctionKind::PciBridge {
            return true;
        }
        let mut cur = bdf;
        while let Some(up) = self.upstream_bridge(cur) {
            if matches!(
                self.functions[&up].kind,
                FunctionKind::PcieToPciBridge | FunctionKind::PciBridge
            ) {
                return true;
            }
            cur = up;
        }
        false
    }

    /// Linux's `pci_acs_enabled(pdev, REQ_ACS_FLAGS)`.
    fn acs_enabled(&self, bdf: Bdf) -> bool {
        let f = &self.functions[&bdf];
        if self.is_conventional(bdf) {
            return false;
        }
        match f.kind {
            FunctionKind::PcieToPciBridge | FunctionKind::PciBridge => false,
            FunctionKind::RootPort | FunctionKind::DownstreamPort => f.acs,
            FunctionKind::Endpoint | FunctionKind::UpstreamPort => !f.multifunction || f.acs,
        }
    }

    /// Linux's `pci_acs_path_enabled(start, NULL, REQ_ACS_FLAGS)`: ACS on `start` and every bridge up to the root.
    fn acs_path_enabled(&self, start: Bdf) -> bool {
        let mut cur = Some(start);
        while let Some(b) = cur {
            if !self.acs_enabled(b) {
                return false;
            }
            cur = self.upstream_bridge(b);
        }
        true
    }

    /// Every `(device, requester id)` pair `pci_for_each_dma_alias()` visits for `bdf`, in order: the function
    /// itself first, then each aliasing bridge going up. Empty for an unknown BDF.
    pub fn dma_aliases(&self, bdf: Bdf) -> Vec<(Bdf, RequesterId)> {
        if !self.functions.contains_key(&bdf) {
            return Vec::new();
        }
        let mut out = vec![(bdf, bdf.requester_id())];
        let mut cur = bdf;
        while let Some(up) = self.upstream_bridge(cur) {
            let b = &self.functions[&up];
            let conventional_here = self.is_conventional(up);
            match b.kind {
                FunctionKind::RootPort | FunctionKind::UpstreamPort | FunctionKind::DownstreamPort => {}
                FunctionKind::PcieToPciBridge if !conventional_here => {
                    let sec = b.secondary_bus.unwrap_or(ROOT_BUS);
                    out.push((
                        up,
                        Bdf {
                            bus: sec,
                            device: 0,
                            function: 0,
                        }
                        .requester_id(),
                    ));
                }
                // A conventional bridge (or a PCIe-to-PCI bridge on a conventional bus) uses its own id.
                _ => out.push((up, up.requester_id())),
            }
            cur = up;
        }
        out
    }

    /// The requester id the IOMMU sees on DMA from `bdf`: the last alias `pci_for_each_dma_alias()` visits.
    pub fn dma_requester_id(&self, bdf: Bdf) -> Option<RequesterId> {
        self.dma_aliases(bdf).last().map(|&(_, rid)| rid)
    }

    fn compute_groups(&mut self) {
        let bdfs: Vec<Bdf> = self.functions.keys().copied().collect();
        let index: HashMap<Bdf, usize> = bdfs.iter().enumerate().map(|(i, &b)| (b, i)).collect();
        let mut uf = UnionFind::new(bdfs.len());
        for &dev in &bdfs {
            let me = index[&dev];
            // 1. DMA aliases: the device shares a group with every bridge that aliases it.
            let aliases = self.dma_aliases(dev);
            for &(b, _) in &aliases {
                uf.union(me, index[&b]);
            }
            let mut pdev = aliases.last().map_or(dev, |&(b, _)| b);
            // 2. Upstream to the point where ACS protects against peer-to-peer.
            while let Some(up) = self.upstream_bridge(pdev) {
                if self.acs_path_enabled(up) {
                    break;
                }
                pdev = up;
                uf.union(me, index[&pdev]);
            }
            // 3. Non-isolated functions of pdev's slot.
            if self.functions[&pdev].multifunction && !self.acs_enabled(pdev) {
                for (&other, _) in self
                    .functions
                    .range(Bdf { function: 0, ..pdev }..=Bdf { function: 7, ..pdev })
                {
                    if other != pdev && !self.acs_enabled(other) {
                        uf.union(me, index[&other]);
                    }
                }
            }
        }
        // Groups numbered by lowest member BDF: bdfs is sorted, so first appearance order is that order.
        let mut root_to_group: HashMap<usize, usize> = HashMap::new();
        let mut groups: Vec<IommuGroup> = Vec::new();
        for (i, &b) in bdfs.iter().enumerate() {
            let root = uf.find(i);
            let g = *root_to_group.entry(root).or_insert_with(|| {
                let id = GroupId(u32::try_from(groups.len()).unwrap_or(u32::MAX));
                groups.push(IommuGroup {
                    id,
                    members: Vec::new(),
                });
                groups.len() - 1
            });
            groups[g].members.push(b);
            self.group_of.insert(b, groups[g].id);
        }
        self.groups = groups;
    }

    /// Every function, sorted by BDF.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionConfig> {
        self.functions.values()
    }

    /// The function at `bdf`.
    pub fn function(&self, bdf: Bdf) -> Option<&FunctionConfig> {
        self.functions.get(&bdf)
    }

    /// Every IOMMU group, by id.
    pub fn groups(&self) -> &[IommuGroup] {
        &self.groups
    }

    /// The group of the function at `bdf`.
    pub fn group_of(&self, bdf: Bdf) -> Option<GroupId> {
        self.group_of.get(&bdf).copied()
    }

    /// The group with id `id`.
    pub fn group(&self, id: GroupId) -> Option<&IommuGroup> {
        self.groups.get(usize::try_from(id.0).ok()?)
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        // Keep the lower index as root so roots are stable.
        if ra < rb {
            self.parent[rb] = ra;
        } else {
            self.parent[ra] = rb;
        }
    }
}

#[cfg(test)]
mod tests;
