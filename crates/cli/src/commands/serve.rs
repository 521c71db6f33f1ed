//! `uvfio serve --socket PATH --device edu`: serves a device of the embedded host to a VMM over
//! vfio-user (QEMU's `-device vfio-user-pci`), one client at a time, until SIGINT or SIGTERM, and
//! removes the socket on the way out.

use super::CliError;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;
use uvfio_vfio_user::{Server, ServerOptions};

/// `uvfio serve` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Unix socket to listen on (created; must not exist).
    #[arg(long)]
    pub socket: PathBuf,
    /// The device to serve: `edu` (QEMU's edu device, 1234:11e8). One device per socket.
    #[arg(long, default_value = "edu", value_parser = ["edu"])]
    pub device: Vec<String>,
}

/// Serves until a signal; the socket is removed however the server ends.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    if args.device.len() > 1 {
        return Err(CliError::Serve(
            "one device per socket: start one `uvfio serve` per device".into(),
        ));
    }
    let server =
        Server::embedded(ServerOptions::default()).map_err(|e| CliError::Serve(super::error_chain(&e)))?;
    let listener = UnixListener::bind(&args.socket)
        .map_err(|e| CliError::Serve(format!("binding {}: {e}", args.socket.display())))?;
    let socket = SocketGuard(args.socket.clone());
    let stop = server.stop_handle();
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| CliError::Serve(format!("installing signal handlers: {e}")))?;
    let handle = signals.handle();
    let waiter = std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("uvfio serve: signal {sig}, stopping");
            stop.stop();
        }
    });
    eprintln!(
        "uvfio serve: edu (1234:11e8) at {} on {}",
        uvfio_host::EDU_BDF,
        args.socket.display()
    );
    let served = server.serve(&listener);
    handle.close();
    let _ = waiter.join();
    drop(socket);
    served.map_err(|e| CliError::Serve(super::error_chain(&e)))?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the socket file when dropped.
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
