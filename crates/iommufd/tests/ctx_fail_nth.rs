//! `iommufd_fail_nth` through the raw uAPI: for each operation, fail its 1st, 2nd, … fallible
//! step (object id, IOVA allocation, pin, frame allocation) until a run passes untouched; after
//! every failure the context must look exactly as before the call.

mod ctx_support;

use ctx_support::*;
use rustix::io::Errno;
use uvfio_abi::selftest::{IOMMU_TEST_CMD, IOMMU_TEST_OP_MOCK_DOMAIN, IommuTestCmd, IommuTestMockDomain};
use zerocopy::FromZeros;

/// Everything a failed call must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    objects: Vec<(u32, String)>,
    reserved: usize,
    locked: u64,
    host_locked: u64,
    adopted: usize,
    table_frames: u64,
}

fn snapshot(fd: &Fd) -> Snapshot {
    let stats = fd.mem.stats();
    Snapshot {
        objects: fd
            .ctx
            .objects()
            .snapshot()
            .into_iter()
            .map(|(id, ty)| (id.raw(), format!("{ty:?}")))
            .collect(),
        reserved: fd.ctx.objects().reserved().len(),
        locked: fd.ctx.account().locked_pages(),
        host_locked: fd.mem.account().locked_pages,
        adopted: stats.adopted_segments,
        table_frames: stats.table_frames,
    }
}

fn mock_domain(fd: &Fd, user: &TestUser, pt_id: u32) -> Result<u32, Errno> {
    let mut cmd = IommuTestCmd {
        size: size_of::<IommuTestCmd>() as u32,
        op: IOMMU_TEST_OP_MOCK_DOMAIN,
        id: pt_id,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)?;
    Ok(cmd.member::<IommuTestMockDomain>().out_stdev_id)
}

/// Runs `op` with its n-th fallible step failing, n = 1, 2, …, until it succeeds; checks each
/// failure against the state before it. Returns the successful result and the steps it took.
fn fail_nth<T>(fd: &Fd, what: &str, mut op: impl FnMut() -> Result<T, Errno>) -> (T, u64) {
    for n in 1..1000 {
        let before = snapshot(fd);
        fd.ctx.fail_points().fail_nth(n);
        let result = op();
        let fired = fd.ctx.fail_points().fired();
        fd.ctx.fail_points().fail_nth(0);
        match result {
            Ok(v) => {
                assert!(!fired, "{what}: step {n} failed yet the call succeeded");
                return (v, n - 1);
            }
            Err(e) => {
                assert!(
                    fired,
                    "{what}: step {n}: failed with {e:?} without an injected failure"
                );
                assert_eq!(e, Errno::NOMEM, "{what}: step {n}: an injected failure is ENOMEM");
                assert_eq!(snapshot(fd), before, "{what}: step {n} left state behind");
            }
        }
    }
    panic!("{what}: never succeeded");
}

#[test]
fn every_failure_of_every_step_leaves_nothing_behind() {
    let user = TestUser::new();
    let fd = open();
    let buf = user.alloc(16 * 4096);
    let (ioas, steps) = fail_nth(&fd, "IOAS_ALLOC", || {
        let mut cmd = uvfio_abi::iommufd::IommuIoasAlloc {
            size: size_of::<uvfio_abi::iommufd::IommuIoasAlloc>() as u32,
            ..FromZeros::new_zeroed()
        };
        ioctl(&fd, &user, uvfio_abi::iommufd::IOMMU_IOAS_ALLOC, &mut cmd).map(|()| cmd.out_ioas_id)
    });
    assert_eq!(steps, 1);
    // A map without a domain: the IOVA allocation only.
    let (first, steps) = fail_nth(&fd, "IOAS_MAP (no domain)", || {
        map(&fd, &user, ioas, buf, 8 * 4096, None)
    });
    assert_eq!(steps, 1);
    // Attaching a mock device: object ids, the automatic domain, pinning and mapping the area.
    let (stdev, steps) = fail_nth(&fd, "MOCK_DOMAIN", || mock_domain(&fd, &user, ioas));
    assert!(steps >= 4, "MOCK_DOMAIN took {steps} steps");
    // A map with a domain: IOVA allocation, pin, domain map.
    let (_, steps) = fail_nth(&fd, "IOAS_MAP (one domain)", || {
        map(&fd, &user, ioas, buf + 8 * 4096, 8 * 4096, None)
    });
    assert!(steps >= 3, "IOAS_MAP took {steps} steps");
    // A second device on the same IOAS joins the domain.
    let (second, _) = fail_nth(&fd, "MOCK_DOMAIN (shared)", || mock_domain(&fd, &user, ioas));
    fail_nth(&fd, "IOAS_UNMAP", || unmap(&fd, &user, ioas, first, 8 * 4096));
    destroy(&fd, &user, second).unwrap();
    destroy(&fd, &user, stdev).unwrap();
    closed_clean(&fd);
}
