//! `#[userns_test::in_userns(...)]`: test bodies that need what only root
//! has (a privileged port, a mount, the hostname, a PID namespace), run as
//! root of a fresh user namespace inside their own namespaces, while the
//! host and the other tests see nothing of it. Run it as any user:
//!
//! ```sh
//! cargo test -p userns-test-examples --test in_userns
//! ```
//!
//! Where the host refuses user namespaces, each test is skipped with the
//! cause and the fix, once per cause in the summary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// A loopback server on port 80, which needs CAP_NET_BIND_SERVICE: root of
/// the test's own network namespace has it there.
#[userns_test::in_userns(net)]
fn serves_http_on_port_80() {
    let listener = TcpListener::bind("127.0.0.1:80").expect("bind 127.0.0.1:80");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 64];
        let n = conn.read(&mut request).unwrap();
        assert!(request[..n].starts_with(b"GET / "));
        conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").unwrap();
    });
    let mut client = TcpStream::connect("127.0.0.1:80").unwrap();
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    server.join().unwrap();
    assert!(reply.ends_with("hello"), "{reply}");
}

/// A tmpfs mounted over /tmp, seen by this test only.
#[userns_test::in_userns(mount)]
fn mounts_a_private_tmpfs() -> std::io::Result<()> {
    nix::mount::mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )?;
    std::fs::write("/tmp/only-here", "x")?;
    // An empty tmpfs: the host's /tmp is hidden underneath.
    let entries = std::fs::read_dir("/tmp")?.count();
    assert_eq!(entries, 1);
    Ok(())
}

/// PID 1 of a fresh PID namespace, with its own /proc.
#[userns_test::in_userns(pid)]
fn is_pid_1() {
    assert_eq!(std::process::id(), 1);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(status.lines().any(|l| l == "Pid:\t1"), "{status}");
}

/// Root in the namespace, and a hostname of its own.
#[userns_test::in_userns(uts)]
fn sets_the_hostname() {
    assert_eq!(nix::unistd::geteuid().as_raw(), 0);
    nix::unistd::sethostname("userns-test-example").unwrap();
    assert_eq!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "userns-test-example"
    );
}

/// An async body: the runtime runs in the test's own process.
#[userns_test::in_userns(net)]
#[tokio::test]
async fn async_bodies_run_there_too() {
    let listener = std::net::TcpListener::bind("127.0.0.1:443").unwrap();
    assert_eq!(listener.local_addr().unwrap().port(), 443);
}
