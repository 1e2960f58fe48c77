//! Time-outs on the connections themselves, below HTTP.
//!
//! poem 3 offers `Server::idle_timeout` (no traffic at all for a while), but
//! nothing bounds how long a client may take to send a request head, nor how
//! long a response may sit unread; hyper's own `header_read_timeout` is not
//! reachable through poem. So the acceptor wraps each connection in
//! [`Deadlines`]:
//!
//! - **head**: from the first byte of a request (or from the accept) the
//!   whole head, up to its blank line, must arrive within `header_timeout`.
//!   A silent or trickling client is cut off instead of holding a socket.
//!   The deadline is armed again for the next request once a response has
//!   been written.
//! - **write**: a write that cannot make progress for `write_timeout`
//!   (the client stopped reading) fails, and hyper drops the connection.
//!
//! And [`Cuts`] lets a handler have its connection dropped: a streamed body
//! that fails part way must not end like a whole one, yet hyper (1.12) ends
//! a chunked body with its clean last chunk even when the body stream
//! returns an error. A cut connection fails its next write instead.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{sleep, Sleep};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub write: Duration,
}

/// The open connections by peer address (unique while a connection
/// lives), each with the flag that cuts it.
#[derive(Clone, Default)]
pub struct Cuts(Arc<Mutex<HashMap<SocketAddr, Arc<AtomicBool>>>>);

impl Cuts {
    fn register(&self, peer: SocketAddr) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut open) = self.0.lock() {
            open.insert(peer, flag.clone());
        }
        flag
    }

    fn forget(&self, peer: &SocketAddr) {
        if let Ok(mut open) = self.0.lock() {
            open.remove(peer);
        }
    }

    /// Drops the connection from `peer` at its next write.
    pub fn cut(&self, peer: SocketAddr) {
        if let Some(flag) = self.0.lock().ok().and_then(|open| open.get(&peer).cloned()) {
            flag.store(true, Ordering::Release);
        }
    }
}

/// A connection's entry in [`Cuts`], removed when the connection goes.
struct Registered {
    cuts: Cuts,
    peer: SocketAddr,
    flag: Arc<AtomicBool>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.cuts.forget(&self.peer);
    }
}

/// A TCP acceptor whose connections carry [`Deadlines`].
pub struct DeadlineAcceptor {
    pub inner: TcpAcceptor,
    pub timeouts: Timeouts,
    pub cuts: Cuts,
    /// SO_SNDBUF of each connection (see `Limits::send_buffer_bytes`).
    pub send_buffer: usize,
}

impl Acceptor for DeadlineAcceptor {
    type Io = Deadlines<TcpStream>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        // A socket refusing the option still serves; only the bound is lost.
        if let Err(e) = socket2::SockRef::from(&io).set_send_buffer_size(self.send_buffer) {
            tracing::warn!("could not bound a connection's send buffer: {e}");
        }
        // A response written in pieces (a streamed file: its head, then its
        // body) must not wait for the client's delayed ACK of the first
        // piece: with Nagle's algorithm on, that cost 40 ms a file.
        if let Err(e) = io.set_nodelay(true) {
            tracing::warn!("could not turn off Nagle's algorithm on a connection: {e}");
        }
        let mut conn = Deadlines::new(io, self.timeouts);
        if let Some(peer) = remote.as_socket_addr() {
            conn.registered = Some(Registered {
                cuts: self.cuts.clone(),
                peer: *peer,
                flag: self.cuts.register(*peer),
            });
        }
        Ok((conn, local, remote, scheme))
    }
}

/// Where the connection is in its request cycle, as far as the bytes show.
enum Phase {
    /// Reading a request head, which must be complete by the deadline.
    Head,
    /// The head has arrived; the request is being handled.
    Busy,
    /// A response has been written; the next byte read starts a new head.
    Answered,
    /// HTTP/2 (prior knowledge): frames, not heads, so only the idle and
    /// write time-outs apply.
    Frames,
}

pub struct Deadlines<T> {
    inner: T,
    timeouts: Timeouts,
    phase: Phase,
    /// The last bytes of the head so far, to find its end across reads.
    tail: [u8; 3],
    head_deadline: Option<Pin<Box<Sleep>>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
    registered: Option<Registered>,
}

impl<T> Deadlines<T> {
    pub fn new(inner: T, timeouts: Timeouts) -> Self {
        Self {
            inner,
            timeouts,
            phase: Phase::Head,
            tail: [0; 3],
            head_deadline: Some(Box::pin(sleep(timeouts.header))),
            write_deadline: None,
            registered: None,
        }
    }

    fn is_cut(&self) -> bool {
        self.registered
            .as_ref()
            .is_some_and(|r| r.flag.load(Ordering::Acquire))
    }

    /// Notes bytes read; true once they complete a request head.
    fn head_complete(&mut self, bytes: &[u8]) -> bool {
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        let done = window.windows(4).any(|w| w == b"\r\n\r\n");
        let keep = window.len().min(3);
        self.tail = [0; 3];
        self.tail[3 - keep..].copy_from_slice(&window[window.len() - keep..]);
        done
    }
}

fn cut_off() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the response was cut short",
    )
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlines<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if read.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                if matches!(this.phase, Phase::Answered) {
                    this.phase = Phase::Head;
                    this.tail = [0; 3];
                    this.head_deadline = Some(Box::pin(sleep(this.timeouts.header)));
                }
                if matches!(this.phase, Phase::Head) {
                    let read = read.to_vec();
                    if read.starts_with(b"PRI * HTTP/2.0") {
                        this.phase = Phase::Frames;
                        this.head_deadline = None;
                    } else if this.head_complete(&read) {
                        this.phase = Phase::Busy;
                        this.head_deadline = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .head_deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(timed_out("no complete request head in time")))
                } else {
                    Poll::Pending
                }
            }
            other => other,
        }
    }
}

impl<T> Deadlines<T> {
    /// Notes that response bytes went out. An interim `100 Continue` does
    /// not end the request: its body is still to come.
    fn wrote(&mut self, first: &[u8]) {
        if matches!(self.phase, Phase::Busy) && !first.starts_with(b"HTTP/1.1 1") {
            self.phase = Phase::Answered;
        }
    }
}

impl<T: AsyncWrite + Unpin> Deadlines<T> {
    /// Tracks a write's progress: a write that stays pending past the write
    /// time-out fails.
    fn track<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => {
                let write = self.timeouts.write;
                let deadline = self
                    .write_deadline
                    .get_or_insert_with(|| Box::pin(sleep(write)));
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out("the client stopped reading")));
                }
                Poll::Pending
            }
            ready => {
                self.write_deadline = None;
                ready
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlines<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(cut_off()));
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(buf);
        }
        this.track(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(cut_off()));
        }
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(
                bufs.iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &b[..]),
            );
        }
        this.track(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.track(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let t = Timeouts {
            header: Duration::from_secs(1),
            write: Duration::from_secs(1),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut d = Deadlines::new((), t);
            assert!(!d.head_complete(b"GET / HTTP/1.1\r\nHost: x\r"));
            assert!(!d.head_complete(b"\n"));
            assert!(d.head_complete(b"\r\n"));
            let mut d = Deadlines::new((), t);
            assert!(!d.head_complete(b"GET / HTTP/1.1\r\n"));
            assert!(d.head_complete(b"\r\nbody"));
        });
    }
}
