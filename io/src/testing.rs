//! Helpers the runtime's unit tests share.

use glommio::net::{TcpListener, TcpStream};

/// Runs `f` on a fresh glommio executor on this thread.
pub fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    glommio::LocalExecutor::default().run(f)
}

/// `n` bytes of a pattern that does not repeat at small offsets.
pub fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Two connected loopback sockets: (the accepted end, the connecting end).
pub async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let far = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    (l.accept().await.unwrap(), far)
}
