//! A TCP relay whose downstream direction is slow: it stands for a slow network between
//! a process and a real server behind it (the S3 store), so that a test can act while a
//! transfer is really under way (kill the process in the middle of a download). The rate
//! can be changed while it runs; 0 lets bytes through as fast as they come.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The relay; dropping it stops accepting (open connections end with their peers).
pub struct SlowLink {
    pub port: u16,
    rate: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowLink {
    /// Relays `127.0.0.1:<port>` to `upstream`, sending back at most `bytes_per_s`.
    pub fn start(upstream: SocketAddr, bytes_per_s: u64) -> SlowLink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        let rate = Arc::new(AtomicU64::new(bytes_per_s));
        let stop = Arc::new(AtomicBool::new(false));
        let (rate_in, stop_in) = (Arc::clone(&rate), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop_in.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                relay(client, server, Arc::clone(&rate_in));
            }
        });
        SlowLink { port, rate, stop }
    }

    /// Bytes per second sent back from now on (0: as fast as they come).
    pub fn set_rate(&self, bytes_per_s: u64) {
        self.rate.store(bytes_per_s, Ordering::Relaxed);
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies client → server at full speed and server → client at `rate`, each on a thread.
fn relay(client: TcpStream, server: TcpStream, rate: Arc<AtomicU64>) {
    let (mut up_from, mut up_to) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_from, &mut up_to);
        let _ = up_to.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let (mut from, mut to) = (server, client);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let bytes_per_s = rate.load(Ordering::Relaxed);
            // A twentieth of a second's worth at a time, paced by sleeping after it.
            let chunk = match bytes_per_s {
                0 => buffer.len(),
                rate => (rate as usize / 20).clamp(1, buffer.len()),
            };
            let read = match from.read(&mut buffer[..chunk]) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
            if bytes_per_s > 0 {
                std::thread::sleep(Duration::from_secs_f64(read as f64 / bytes_per_s as f64));
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
