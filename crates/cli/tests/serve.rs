//! `uvfio serve` as a process: it serves on its socket, a vfio-user client negotiates with it, and
//! SIGTERM (or SIGINT) ends it cleanly — exit status 0, socket removed.

use rustix::process::{Pid, Signal, kill_process};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn serve_and_stop(signal: Signal) {
    let dir = std::env::temp_dir().join(format!("uvfio-serve-test-{}-{signal:?}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("edu.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uvfio"))
        .args(["serve", "--socket"])
        .arg(&socket)
        .args(["--device", "edu"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    {
        let mut client = uvfio_vfio_user::Client::connect(&socket).unwrap();
        client.version(Default::default()).unwrap();
        let info = client.device_info().unwrap();
        assert_eq!(info.num_regions, 9);
    }
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process(pid, signal).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_the_server_and_removes_its_socket() {
    serve_and_stop(Signal::TERM);
}

#[test]
fn sigint_stops_the_server_and_removes_its_socket() {
    serve_and_stop(Signal::INT);
}

#[test]
fn a_socket_that_exists_is_refused() {
    let dir = std::env::temp_dir().join(format!("uvfio-serve-test-{}-exists", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("taken");
    std::fs::write(&socket, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uvfio"))
        .args(["serve", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("binding"),
        "{out:?}"
    );
    assert!(socket.exists(), "someone else's file is left alone");
    let _ = std::fs::remove_dir_all(&dir);
}
