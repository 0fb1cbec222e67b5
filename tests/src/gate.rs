//! A TCP gate in front of a server: tests close it to make the server vanish mid-session,
//! then open it again to see the service recover by itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections from a local port to `target` while open.
#[derive(Debug)]
pub struct Gate {
    pub address: SocketAddr,
    open: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl Gate {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let address = listener.local_addr().expect("a bound address");
        let open = Arc::new(AtomicBool::new(true));
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tokio::spawn(accept(listener, target, open.clone(), pipes.clone()));
        Self {
            address,
            open,
            pipes,
            acceptor,
        }
    }

    /// Refuses new connections and breaks every open one, as a server that went down would.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        for pipe in self
            .pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            pipe.abort();
        }
    }

    /// Lets connections through again.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.close();
        self.acceptor.abort();
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    open: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if !open.load(Ordering::SeqCst) {
            continue; // dropping `inbound` resets the connection
        }
        let pipe = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        pipes.lock().unwrap_or_else(|e| e.into_inner()).push(pipe);
    }
}
