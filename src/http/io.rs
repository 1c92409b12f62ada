//! The byte stream under hyper: plain TCP or rustls over TCP, wrapped in a counter that records
//! bytes in/out and when the last written bytes were flushed (the end of `send`). It times
//! nothing else and knows nothing of HTTP.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Plain or TLS stream; one type so hyper's connection type is the same for both.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Counters shared between the connection's I/O (written by whoever polls the connection) and
/// the request that reads them at phase edges. One writer per field, so plain loads and stores
/// suffice: no read-modify-write, no lock.
#[derive(Debug)]
pub(crate) struct IoStats {
    base: Instant,
    read: AtomicU64,
    written: AtomicU64,
    /// Nanoseconds after `base` + 1 of the last flush that followed a write; 0 = never.
    flushed_at: AtomicU64,
}

impl IoStats {
    pub(crate) fn new(base: Instant) -> Arc<IoStats> {
        Arc::new(IoStats {
            base,
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            flushed_at: AtomicU64::new(0),
        })
    }

    pub(crate) fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// When written bytes were last flushed to the socket (plaintext side of TLS).
    pub(crate) fn flushed_at(&self) -> Option<Instant> {
        match self.flushed_at.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.base + Duration::from_nanos(n - 1)),
        }
    }
}

/// `Stream` plus byte counters and the flush mark. Counts HTTP bytes (above TLS).
pub(crate) struct TimedIo {
    inner: Stream,
    stats: Arc<IoStats>,
    read: u64,
    written: u64,
    /// Bytes were written since the last recorded flush (hyper flushes on every poll, even
    /// when it only read, so only a flush after a write marks the end of sending).
    dirty: bool,
}

impl TimedIo {
    pub(crate) fn new(inner: Stream, stats: Arc<IoStats>) -> TimedIo {
        TimedIo {
            inner,
            stats,
            read: 0,
            written: 0,
            dirty: false,
        }
    }

    fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.written += n as u64;
            self.stats.written.store(self.written, Ordering::Relaxed);
            self.dirty = true;
        }
    }

    fn flushed(&mut self) {
        if self.dirty {
            self.dirty = false;
            let ns = self.stats.base.elapsed().as_nanos() as u64;
            self.stats.flushed_at.store(ns + 1, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            this.read += n as u64;
            this.stats.read.store(this.read, Ordering::Relaxed);
        }
        res
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        if let Poll::Ready(Ok(n)) = res {
            this.wrote(n);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        if let Poll::Ready(Ok(n)) = res {
            this.wrote(n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        if let Poll::Ready(Ok(())) = res {
            this.flushed();
        }
        res
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
