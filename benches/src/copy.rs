//! `copy`: a bare glommio L4 relay, the reference perf-notes names (one
//! executor per thread, SO_REUSEPORT listeners, a 64 KiB buffer per
//! direction, read then write_all). It understands nothing, so beside
//! srs-proxy it shows what the runtime alone costs on the same load.

use crate::Args;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::net::SocketAddr;

pub fn run(a: &Args) -> Result<serde_json::Value, String> {
    let listen: SocketAddr = a.str("listen")?.parse().map_err(|e| format!("--listen: {e}"))?;
    let to: SocketAddr = a.str("to")?.parse().map_err(|e| format!("--to: {e}"))?;
    let seconds = a.dur("seconds", Some(1e9))?;
    crate::run_threads(a.threads()?, a.flag("pin"), move |_| async move {
        let l = match TcpListener::bind(listen) {
            Ok(l) => l,
            Err(e) => return Err(format!("bind {listen}: {e}")),
        };
        let accept = async {
            loop {
                let Ok(c) = l.accept().await else { continue };
                glommio::spawn_local(async move {
                    let Ok(o) = TcpStream::connect(to).await else { return };
                    let _ = c.set_nodelay(true);
                    let _ = o.set_nodelay(true);
                    let (cr, cw) = futures_lite::io::split(c);
                    let (or, ow) = futures_lite::io::split(o);
                    futures_lite::future::or(copy(cr, ow), copy(or, cw)).await;
                })
                .detach();
            }
        };
        futures_lite::future::or(accept, async {
            glommio::timer::sleep(seconds).await;
        })
        .await;
        Ok(())
    })?
    .into_iter()
    .collect::<Result<Vec<()>, String>>()?;
    Ok(serde_json::json!({ "mode": "copy" }))
}

async fn copy(mut r: impl AsyncReadExt + Unpin, mut w: impl AsyncWriteExt + Unpin) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
