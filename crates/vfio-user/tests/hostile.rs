//! A hostile client: a corpus of malformed messages, each answered with an error reply carrying
//! the errno the spec or Linux VFIO gives, or with a closed connection — never a panic. After each,
//! this process's descriptors and the host's files, pins, charges and adopted segments are back at
//! their baseline, and the server serves the next client normally.

mod common;
mod corpus;

use common::{BAR0, CONFIG, Harness, PAGE, eventfd, fds, memfd, serial};
use corpus::{EFD, Expect, ID, access, corpus, irq_set, raw};
use rustix::io::Errno;
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use uvfio_abi::vfio::VFIO_PCI_INTX_IRQ_INDEX;
use uvfio_devices::edu::{EDU_ID, reg};
use uvfio_types::{Access, Iova, IovaRange};
use uvfio_vfio_user::proto::dma::DmaMap;
use uvfio_vfio_user::proto::version::Capabilities;
use uvfio_vfio_user::proto::{Command, HEADER_SIZE};
use uvfio_vfio_user::transport::TransportError;
use uvfio_vfio_user::{Client, ClientError, ServerOptions};

fn fd_refs(fds: &[OwnedFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(AsFd::as_fd).collect()
}

/// The connection was closed: the next receive sees the end of the stream.
fn assert_closed(c: &mut Client, name: &str) {
    match c.recv() {
        Err(ClientError::Transport(TransportError::Closed | TransportError::Truncated { .. })) => {}
        other => panic!("{name}: expected a closed connection, got {other:?}"),
    }
}

fn assert_error(c: &mut Client, errno: Errno, name: &str) {
    let reply = c.recv().unwrap_or_else(|e| panic!("{name}: no reply: {e}"));
    assert!(reply.header.is_error(), "{name}: not an error reply: {reply:?}");
    assert_eq!(reply.header.msg_id, ID, "{name}");
    assert_eq!(
        reply.header.msg_size as usize, HEADER_SIZE,
        "{name}: an error reply is the header alone"
    );
    assert_eq!(
        Errno::from_raw_os_error(reply.header.error_no as i32),
        errno,
        "{name}"
    );
    assert!(reply.fds.is_empty(), "{name}");
}

#[test]
fn malformed_messages_get_errors_or_a_closed_connection() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let mut count = 0;
    for case in corpus() {
        let fds_before = {
            // The case's own descriptors are this process's until sent: count without them.
            let mut now = fds();
            for fd in &case.fds {
                now.remove(&std::os::fd::AsRawFd::as_raw_fd(fd));
            }
            now
        };
        {
            let mut c = h.connect();
            if case.handshake {
                // No write_multiple: REGION_WRITE_MULTI is refused.
                let caps = Capabilities {
                    max_msg_fds: Some(8),
                    ..Capabilities::default()
                };
                c.version(caps).expect("VFIO_USER_VERSION");
            }
            c.send_raw(&case.bytes, &fd_refs(&case.fds))
                .unwrap_or_else(|e| panic!("{}: send: {e}", case.name));
            drop(case.fds);
            if case.shutdown {
                c.socket().shutdown(Shutdown::Write).expect("shutdown");
            }
            match case.expect {
                Expect::Error(errno) => {
                    assert_error(&mut c, errno, case.name);
                    // The connection is still served.
                    assert!(
                        c.device_info().is_ok(),
                        "{}: connection unusable after the error",
                        case.name
                    );
                }
                Expect::ErrorThenClose(errno) => {
                    assert_error(&mut c, errno, case.name);
                    assert_closed(&mut c, case.name);
                }
                Expect::Close => assert_closed(&mut c, case.name),
            }
        }
        h.settle(baseline, &fds_before);
        count += 1;
    }
    assert!(count >= 60, "{count} cases");
    // And a normal client afterwards.
    let mut c = h.client();
    assert_eq!(c.read32(CONFIG, 0).expect("config"), 0x11e8_1234);
    drop(c);
    h.shutdown().expect("the server thread did not panic");
}

#[test]
fn too_many_dma_regions_is_enospc() {
    let _g = serial();
    let h = Harness::with_options(ServerOptions {
        max_dma_maps: 2,
        log_level: Some(uvfio_vfio_user::Level::from_env()),
        ..ServerOptions::default()
    });
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = h.connect();
        let reply = c.version(Capabilities::default()).expect("version");
        assert_eq!(reply.caps.max_dma_maps, Some(2));
        let mem = memfd(4 * PAGE);
        let map = |i: u64| DmaMap {
            range: IovaRange::from_start_len(Iova::new(0x10_0000 + i * PAGE), PAGE).expect("range"),
            offset: i * PAGE,
            access: Access::READ,
            has_fd: true,
        };
        c.dma_map(&map(0), Some(mem.as_fd())).expect("first");
        c.dma_map(&map(1), Some(mem.as_fd())).expect("second");
        let e = c.dma_map(&map(2), Some(mem.as_fd())).expect_err("third");
        assert_eq!(e.errno(), Some(Errno::NOSPC));
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn a_client_that_vanishes_holding_everything_leaves_nothing_behind() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = h.client();
        let mem = memfd(16 * PAGE);
        for i in 0..8 {
            let map = DmaMap {
                range: IovaRange::from_start_len(Iova::new(0x10_0000 + i * 2 * PAGE), 2 * PAGE)
                    .expect("range"),
                offset: i * 2 * PAGE,
                access: Access::RW,
                has_fd: true,
            };
            c.dma_map(&map, Some(mem.as_fd())).expect("map");
        }
        let ev = eventfd();
        let set = irq_set(20, EFD, VFIO_PCI_INTX_IRQ_INDEX, 0, 1);
        c.call(Command::DeviceSetIrqs, &set, &[ev.as_fd()])
            .expect("SET_IRQS");
        // Half a message, then gone.
        c.send_raw(&raw(10, 0, 0, Some(100), &access(CONFIG, 0, 4)), &[])
            .expect("send");
    }
    h.settle(baseline, &fds_before);
    let mut c = h.client();
    let cmd = c.region_read(CONFIG, 4, 2).expect("command");
    c.region_write(CONFIG, 4, &[cmd[0] | 2, cmd[1]])
        .expect("memory decode on");
    assert_eq!(c.read32(BAR0, reg::ID).expect("id"), EDU_ID);
}
