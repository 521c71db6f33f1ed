//! The end-to-end guest program: runs as root inside the QEMU guest that scripts/e2e/qemu-guest.sh
//! boots, finds QEMU's "edu" teaching device (PCI 1234:11e8) on the guest's PCI bus and drives it
//! from user space through sysfs, the way a user-space driver would on bare metal:
//!
//! - `resource` gives BAR0, `config` (offset 4) enables memory decode and bus mastering,
//! - `resource0` is mmap'ed for register access,
//! - identification (0x00), liveness (0x04), factorial (0x08 / status 0x20),
//! - DMA both ways between an mlock'ed page (its physical address from /proc/self/pagemap; the guest
//!   has no IOMMU, so bus addresses are guest physical ones) and the edu's buffer at 0x40000.
//!
//! Prints one `PASS …` / `FAIL …` line per check and a last line `E2E-RESULT: PASS`, `FAIL` or
//! `NO-DEVICE` (no edu on the bus); exit code 0, 1 or 2 accordingly.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

const EDU_VENDOR: u16 = 0x1234;
const EDU_DEVICE: u16 = 0x11e8;

// edu registers (QEMU docs/specs/edu.rst)
const REG_IDENT: usize = 0x00;
const REG_LIVENESS: usize = 0x04;
const REG_FACTORIAL: usize = 0x08;
const REG_STATUS: usize = 0x20;
const REG_DMA_SRC: usize = 0x80;
const REG_DMA_DST: usize = 0x88;
const REG_DMA_COUNT: usize = 0x90;
const REG_DMA_CMD: usize = 0x98;
const STATUS_COMPUTING: u32 = 0x01;
const DMA_CMD_START: u64 = 0x1;
const DMA_CMD_TO_RAM: u64 = 0x2;
const EDU_DMA_BUFFER: u64 = 0x40000;
const EDU_DMA_BUFFER_SIZE: usize = 4096;
/// The edu's DMA mask is 28 bits: the guest page must lie below 256 MiB.
const EDU_DMA_LIMIT: u64 = 1 << 28;

const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_COMMAND_MASTER: u16 = 0x4;
const IORESOURCE_MEM: u64 = 0x200;

const POLL_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let code = match std::panic::catch_unwind(run) {
        Ok(Outcome::Pass) => {
            println!("E2E-RESULT: PASS");
            0
        }
        Ok(Outcome::Fail) => {
            println!("E2E-RESULT: FAIL");
            1
        }
        Ok(Outcome::NoDevice) => {
            println!("E2E-RESULT: NO-DEVICE");
            2
        }
        Err(_) => {
            println!("FAIL panic (message above)");
            println!("E2E-RESULT: FAIL");
            1
        }
    };
    std::process::exit(code);
}

enum Outcome {
    Pass,
    Fail,
    NoDevice,
}

/// Counts the checks; every check prints one line.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    fn check(&mut self, ok: bool, name: &str, detail: impl std::fmt::Display) -> bool {
        if ok {
            self.passed += 1;
            println!("PASS {name}: {detail}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail}");
        }
        ok
    }

    fn error(&mut self, name: &str, err: impl std::fmt::Display) {
        self.check(false, name, err);
    }
}

fn run() -> Outcome {
    let mut report = Report::default();
    println!(
        "uvfio-e2e-guest: kernel {}",
        read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default()
    );

    let devices = match scan_pci() {
        Ok(d) => d,
        Err(e) => {
            report.error("pci-scan", format!("/sys/bus/pci/devices: {e}"));
            return Outcome::Fail;
        }
    };
    let edu: Vec<&PciFunction> = devices
        .iter()
        .filter(|d| d.vendor == EDU_VENDOR && d.device == EDU_DEVICE)
        .collect();
    if edu.is_empty() {
        // The infrastructure check (qemu-guest.sh --check-qemu): the guest runs this program, the
        // pagemap works; there is just nothing to drive.
        match PinnedPage::below(EDU_DMA_LIMIT) {
            Ok((page, phys)) => report.check(
                true,
                "dma-page",
                format!(
                    "mlock'ed page at {:p}, guest physical {phys:#x}",
                    page.ptr.as_ptr()
                ),
            ),
            Err(e) => {
                report.error("dma-page", e);
                false
            }
        };
        println!(
            "no edu device found ({EDU_VENDOR:04x}:{EDU_DEVICE:04x}) among {} PCI functions",
            devices.len()
        );
        return if report.failed == 0 {
            Outcome::NoDevice
        } else {
            Outcome::Fail
        };
    }
    if edu.len() > 1 {
        println!("note: {} edu devices, testing the first", edu.len());
    }
    test_edu(&mut report, edu[0]);
    println!("summary: {} passed, {} failed", report.passed, report.failed);
    if report.failed == 0 {
        Outcome::Pass
    } else {
        Outcome::Fail
    }
}

struct PciFunction {
    path: PathBuf,
    vendor: u16,
    device: u16,
}

fn read_trimmed(path: impl AsRef<Path>) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_owned())
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

fn read_hex_u16(path: impl AsRef<Path>) -> io::Result<u16> {
    let s = read_trimmed(&path)?;
    parse_hex(&s).and_then(|v| u16::try_from(v).ok()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {s:?}", path.as_ref().display()),
        )
    })
}

/// Every function under /sys/bus/pci/devices, printed as it is found.
fn scan_pci() -> io::Result<Vec<PciFunction>> {
    let mut paths: Vec<PathBuf> = fs::read_dir("/sys/bus/pci/devices")?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let vendor = read_hex_u16(path.join("vendor"))?;
        let device = read_hex_u16(path.join("device"))?;
        let class = read_trimmed(path.join("class")).unwrap_or_default();
        println!(
            "pci {} {vendor:04x}:{device:04x} class {class}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        out.push(PciFunction { path, vendor, device });
    }
    Ok(out)
}

fn test_edu(report: &mut Report, dev: &PciFunction) {
    let name = dev
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    report.check(
        true,
        "found",
        format!("edu {EDU_VENDOR:04x}:{EDU_DEVICE:04x} at {name}"),
    );

    // BAR0 from `resource`: "start end flags" per line, the first line is BAR0.
    let bar0 = match read_trimmed(dev.path.join("resource")).map(|s| {
        let first = s.lines().next().unwrap_or_default().to_owned();
        let v: Vec<u64> = first.split_whitespace().filter_map(parse_hex).collect();
        (first, v)
    }) {
        Ok((_, v)) if v.len() == 3 && v[1] > v[0] => (v[0], v[1] - v[0] + 1, v[2]),
        Ok((line, _)) => return report.error("bar0", format!("unexpected resource line {line:?}")),
        Err(e) => return report.error("bar0", format!("resource: {e}")),
    };
    let (start, size, flags) = bar0;
    if !report.check(
        flags & IORESOURCE_MEM != 0 && size >= 1 << 20,
        "bar0",
        format!(
            "memory BAR at {start:#x}, size {size:#x} ({} KiB), flags {flags:#x}",
            size >> 10
        ),
    ) {
        return;
    }

    // Memory decode and bus mastering through the command register in `config`.
    match enable_device(&dev.path) {
        Ok((before, after)) => {
            let want = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
            if !report.check(
                after & want == want,
                "command",
                format!("PCI command {before:#06x} -> {after:#06x}"),
            ) {
                return;
            }
        }
        Err(e) => return report.error("command", format!("config: {e}")),
    }

    let Ok(size) = usize::try_from(size) else {
        return report.error("mmap", "BAR0 larger than the address space");
    };
    let bar = match Mmio::map(&dev.path.join("resource0"), size) {
        Ok(bar) => bar,
        Err(e) => return report.error("mmap", format!("resource0: {e}")),
    };
    report.check(
        true,
        "mmap",
        format!("resource0 mapped at {:p}, {size:#x} bytes", bar.ptr.as_ptr()),
    );

    let ident = bar.read32(REG_IDENT);
    report.check(
        ident == 0x0100_00ed && ident & 0xff == 0xed,
        "ident",
        format!("reg 0x00 = {ident:#010x} (want 0x010000ed: version 1.0, 0xed)"),
    );

    for value in [0x1234_5678u32, 0xdead_beef, 0] {
        bar.write32(REG_LIVENESS, value);
        let got = bar.read32(REG_LIVENESS);
        report.check(
            got == !value,
            "liveness",
            format!("wrote {value:#010x}, read {got:#010x} (want {:#010x})", !value),
        );
    }

    bar.write32(REG_FACTORIAL, 10);
    match poll(|| bar.read32(REG_STATUS) & STATUS_COMPUTING == 0) {
        Ok(took) => {
            let got = bar.read32(REG_FACTORIAL);
            report.check(
                got == 3_628_800,
                "factorial",
                format!("10! = {got} (want 3628800) after {took:?}"),
            );
        }
        Err(()) => report.error(
            "factorial",
            format!("status still computing after {POLL_TIMEOUT:?}"),
        ),
    }

    test_dma(report, &bar);
}

/// Sets memory decode and bus mastering; returns the command register before and after.
fn enable_device(dev: &Path) -> io::Result<(u16, u16)> {
    let config = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev.join("config"))?;
    let read_cmd = || -> io::Result<u16> {
        let mut b = [0u8; 2];
        config.read_exact_at(&mut b, PCI_COMMAND)?;
        Ok(u16::from_le_bytes(b))
    };
    let before = read_cmd()?;
    let want = before | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    config.write_all_at(&want.to_le_bytes(), PCI_COMMAND)?;
    Ok((before, read_cmd()?))
}

/// Polls `done` until it holds; the time it took, or `Err` after [`POLL_TIMEOUT`].
fn poll(mut done: impl FnMut() -> bool) -> Result<Duration, ()> {
    let start = Instant::now();
    loop {
        if done() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > POLL_TIMEOUT {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn test_dma(report: &mut Report, bar: &Mmio) {
    let (page, phys) = match PinnedPage::below(EDU_DMA_LIMIT) {
        Ok(p) => p,
        Err(e) => return report.error("dma-page", e),
    };
    report.check(
        true,
        "dma-page",
        format!(
            "mlock'ed page at {:p}, guest physical {phys:#x}",
            page.ptr.as_ptr()
        ),
    );
    let len = EDU_DMA_BUFFER_SIZE.min(page.len);
    let pattern = |i: usize| (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8) ^ 0xa5;

    for i in 0..len {
        page.write(i, pattern(i));
    }
    // RAM -> edu buffer
    let cmd = DMA_CMD_START;
    if !dma(report, bar, "dma-to-device", phys, EDU_DMA_BUFFER, len, cmd) {
        return;
    }
    for i in 0..len {
        page.write(i, 0);
    }
    // edu buffer -> RAM
    let cmd = DMA_CMD_START | DMA_CMD_TO_RAM;
    if !dma(report, bar, "dma-to-ram", EDU_DMA_BUFFER, phys, len, cmd) {
        return;
    }
    let bad: Vec<usize> = (0..len).filter(|&i| page.read(i) != pattern(i)).collect();
    match bad.first() {
        None => report.check(
            true,
            "dma-verify",
            format!("{len} bytes came back through the edu's buffer"),
        ),
        Some(&i) => report.check(
            false,
            "dma-verify",
            format!(
                "{} of {len} bytes differ; first at {i}: {:#04x}, want {:#04x}",
                bad.len(),
                page.read(i),
                pattern(i)
            ),
        ),
    };
}

fn dma(report: &mut Report, bar: &Mmio, name: &str, src: u64, dst: u64, len: usize, cmd: u64) -> bool {
    bar.write64(REG_DMA_SRC, src);
    bar.write64(REG_DMA_DST, dst);
    bar.write64(REG_DMA_COUNT, len as u64);
    bar.write64(REG_DMA_CMD, cmd);
    match poll(|| bar.read64(REG_DMA_CMD) & DMA_CMD_START == 0) {
        Ok(took) => report.check(
            true,
            name,
            format!("{len} bytes {src:#x} -> {dst:#x} in {took:?}"),
        ),
        Err(()) => report.check(false, name, format!("cmd bit 0 still set after {POLL_TIMEOUT:?}")),
    }
}

/// BAR0 mapped from sysfs `resource0`.
struct Mmio {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmio {
    fn map(path: &Path, len: usize) -> io::Result<Mmio> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_SYNC)
            .open(path)?;
        let ptr = map(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            Some(&file),
        )?;
        Ok(Mmio { ptr, len })
    }

    fn reg<T>(&self, off: usize) -> *mut T {
        let size = std::mem::size_of::<T>();
        assert!(
            off.is_multiple_of(size) && off + size <= self.len,
            "register {off:#x} (size {size}) outside BAR0"
        );
        // `off + size <= len`: in bounds of the mapping, aligned for T.
        self.ptr.as_ptr().wrapping_add(off).cast()
    }

    fn read32(&self, off: usize) -> u32 {
        // SAFETY: `reg` checked the offset lies inside the live mapping and is 4-aligned.
        unsafe { self.reg::<u32>(off).read_volatile() }
    }

    fn write32(&self, off: usize, v: u32) {
        // SAFETY: as in `read32`.
        unsafe { self.reg::<u32>(off).write_volatile(v) }
    }

    fn read64(&self, off: usize) -> u64 {
        // SAFETY: as in `read32`, 8-aligned.
        unsafe { self.reg::<u64>(off).read_volatile() }
    }

    fn write64(&self, off: usize, v: u64) {
        // SAFETY: as in `read32`, 8-aligned.
        unsafe { self.reg::<u64>(off).write_volatile(v) }
    }
}

impl Drop for Mmio {
    fn drop(&mut self) {
        unmap(self.ptr, self.len);
    }
}

/// One anonymous page, locked in memory, that the device reads and writes behind the compiler's
/// back: accessed only with volatile reads and writes.
struct PinnedPage {
    ptr: NonNull<u8>,
    len: usize,
}

impl PinnedPage {
    fn new() -> io::Result<PinnedPage> {
        // SAFETY: sysconf has no preconditions.
        let len = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let ptr = map(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            None,
        )?;
        let page = PinnedPage { ptr, len };
        // SAFETY: the range is our own live mapping.
        if unsafe { libc::mlock(page.ptr.as_ptr().cast(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Touch it so that it has a frame (mlock faults it in; this makes it ours, not the zero page).
        page.write(0, 1);
        Ok(page)
    }

    /// A page whose guest physical address plus its length lies below `limit`; pages above it are
    /// kept until the end so the allocator does not hand them out again.
    fn below(limit: u64) -> Result<(PinnedPage, u64), String> {
        let pagemap = File::open("/proc/self/pagemap").map_err(|e| format!("/proc/self/pagemap: {e}"))?;
        let mut rejected = Vec::new();
        for _ in 0..4096 {
            let page = PinnedPage::new().map_err(|e| format!("mmap/mlock: {e}"))?;
            let phys = physical(&pagemap, page.ptr.as_ptr() as usize, page.len)?;
            if phys + page.len as u64 <= limit {
                return Ok((page, phys));
            }
            rejected.push(page);
        }
        Err(format!("no page below {limit:#x} after {} tries", rejected.len()))
    }

    fn write(&self, i: usize, v: u8) {
        assert!(i < self.len);
        // SAFETY: in bounds of our live, writable mapping.
        unsafe { self.ptr.as_ptr().wrapping_add(i).write_volatile(v) }
    }

    fn read(&self, i: usize) -> u8 {
        assert!(i < self.len);
        // SAFETY: in bounds of our live, readable mapping.
        unsafe { self.ptr.as_ptr().wrapping_add(i).read_volatile() }
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        // SAFETY: our own live mapping; failure only leaves it locked.
        unsafe { libc::munlock(self.ptr.as_ptr().cast(), self.len) };
        unmap(self.ptr, self.len);
    }
}

/// The physical address of the page at `vaddr` from /proc/self/pagemap: one u64 per virtual page,
/// bit 63 "present", bits 0-54 the PFN (zero unless the reader has CAP_SYS_ADMIN).
fn physical(pagemap: &File, vaddr: usize, page_size: usize) -> Result<u64, String> {
    let mut entry = [0u8; 8];
    let offset = (vaddr / page_size * 8) as u64;
    pagemap
        .read_exact_at(&mut entry, offset)
        .map_err(|e| format!("pagemap read at {offset:#x}: {e}"))?;
    let entry = u64::from_le_bytes(entry);
    if entry & (1 << 63) == 0 {
        return Err(format!("page {vaddr:#x} not present (pagemap {entry:#018x})"));
    }
    let pfn = entry & ((1 << 55) - 1);
    if pfn == 0 {
        return Err("pagemap shows PFN 0: not root (CAP_SYS_ADMIN)?".into());
    }
    Ok(pfn * page_size as u64 + (vaddr % page_size) as u64)
}

fn map(len: usize, prot: libc::c_int, flags: libc::c_int, file: Option<&File>) -> io::Result<NonNull<u8>> {
    use std::os::fd::AsRawFd;
    let fd = file.map_or(-1, |f| f.as_raw_fd());
    // SAFETY: a fresh mapping chosen by the kernel (no MAP_FIXED): touches no existing memory.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: `ptr`/`len` are a mapping made by `map` and owned by the caller, which drops it.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}
