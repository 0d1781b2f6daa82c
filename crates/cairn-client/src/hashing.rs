//! A sink that hashes what it is given.

/// An [`AsyncWrite`](tokio::io::AsyncWrite) that keeps only the BLAKE3 hash
/// and the length of what it is given: give it to
/// [`Client::fetch_to`](crate::Client::fetch_to) to check a stored file
/// against a known hash without keeping its bytes (`cairn bench` does).
#[derive(Default)]
pub struct HashingWriter {
    /// BLAKE3 of everything written.
    pub hasher: blake3::Hasher,
    /// Bytes written.
    pub len: u64,
}

impl tokio::io::AsyncWrite for HashingWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
