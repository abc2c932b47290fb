//! A TCP proxy that can be switched "down" and back "up", to show services what a
//! client sees when the server behind it stops: going down closes every open
//! connection and closes the listening socket, so new connections are refused; going
//! up listens again on the same port and forwards to the same server.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running proxy on `127.0.0.1`; dropping it closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy (up) on a free port in front of `target` (`host:port`).
    pub async fn start(target: &str) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, up_changes) = watch::channel(true);
        let task = tokio::spawn(serve(listener, addr, target.to_string(), up_changes));
        Ok(FaultProxy { addr, up, task })
    }

    /// Returns the address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns `http://{addr}`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection and refuses new ones until [`FaultProxy::up`].
    pub fn down(&self) {
        self.up.send_replace(false);
    }

    /// Accepts and forwards connections again.
    pub fn up(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    first_listener: TcpListener,
    addr: SocketAddr,
    target: String,
    mut up: watch::Receiver<bool>,
) {
    let mut listener_opt = Some(first_listener);
    loop {
        if up.wait_for(|is_up| *is_up).await.is_err() {
            return;
        }
        let listener = match listener_opt.take() {
            Some(listener) => listener,
            None => match rebind(addr).await {
                Some(listener) => listener,
                None => return,
            },
        };
        // Dropping the set aborts the forwarding tasks, which closes both sockets.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((client, _)) = accepted {
                        connections.spawn(forward(client, target.clone()));
                    }
                }
                changed = up.wait_for(|is_up| !*is_up) => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.shutdown().await;
    }
}

/// Listens on the same port again (the kernel may need a moment to release it).
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn forward(mut client: TcpStream, target: String) {
    if let Ok(mut server) = TcpStream::connect(&target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
