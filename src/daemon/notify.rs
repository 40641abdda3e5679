//! sd_notify: tells systemd (through `$NOTIFY_SOCKET`) that the daemon is ready, reloading,
//! stopping, and how it is doing. **Shell.** Without systemd it does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (`READY=1`, `STATUS=…`, `RELOADING=1`, `STOPPING=1`) if systemd asked for it.
/// Failures are ignored: the service manager is not there to be argued with.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let addr = match bytes.split_first() {
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)
        }
        _ => SocketAddr::from_pathname(&path),
    };
    if let (Ok(socket), Ok(addr)) = (UnixDatagram::unbound(), addr) {
        let _ = socket.send_to_addr(state.as_bytes(), &addr);
    }
}
