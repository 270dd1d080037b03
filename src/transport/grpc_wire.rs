//! gRPC's message framing by hand, for the one call whose messages are mostly bulk bytes (a
//! live migration's pages). tonic's codec copies every message into one buffer when it sends
//! and again when it receives; here a message is a list of [`Bytes`] chunks instead: what is
//! sent can be the pages themselves, and what arrives stays the slices of the connection's
//! read buffer that HTTP/2 handed over, until the message is decoded. On the wire it is plain
//! gRPC (a 5-byte prefix — compressed flag, big-endian length — before each protobuf message),
//! so any gRPC client or server speaks to it.
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use tonic::Status;

/// Bytes before each message: the compressed flag and the length.
pub const PREFIX: usize = 5;

/// The prefix of an uncompressed message of `len` bytes.
pub fn prefix(len: usize) -> [u8; PREFIX] {
    let [a, b, c, d] = (len as u32).to_be_bytes();
    [0, a, b, c, d]
}

/// One whole message with its prefix, encoded in one buffer (for small messages).
pub fn message(m: &impl prost::Message) -> Bytes {
    let len = m.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX + len);
    buf.put_slice(&prefix(len));
    m.encode(&mut buf).expect("the buffer was sized for the message");
    buf.freeze()
}

/// Received bytes not parsed yet, as the chunks they arrived in.
#[derive(Debug, Default)]
pub struct Chunks {
    parts: VecDeque<Bytes>,
    len: usize,
}

impl Chunks {
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.parts.push_back(chunk);
        }
    }

    /// The first `n` bytes as chunks of their own (no byte is copied).
    fn split_to(&mut self, n: usize) -> Chunks {
        assert!(n <= self.len, "split beyond the buffered bytes");
        let mut head = Chunks::default();
        while head.len < n {
            let front = self.parts.front_mut().expect("enough bytes are buffered");
            let wanted = n - head.len;
            match front.len() <= wanted {
                true => head.push(self.parts.pop_front().expect("front exists")),
                false => head.push(front.split_to(wanted)),
            }
        }
        self.len -= n;
        head
    }

    /// The next message's prefix — compressed flag and length — once its five bytes are in.
    fn peek_prefix(&self) -> Option<(u8, usize)> {
        if self.len < PREFIX {
            return None;
        }
        let mut bytes = self.parts.iter().flat_map(|p| p.iter().copied()).take(PREFIX);
        let flag = bytes.next()?;
        Some((flag, bytes.fold(0, |len, b| (len << 8) | usize::from(b))))
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |p| p.as_ref())
    }

    fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advance beyond the buffered bytes");
        self.len -= n;
        while n > 0 {
            let front = self.parts.front_mut().expect("enough bytes are buffered");
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.parts.pop_front();
        }
    }

    /// Without a copy when the bytes lie in one chunk (a page that came in one HTTP/2 frame).
    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        match self.parts.front_mut() {
            Some(front) if front.len() >= len => {
                let bytes = front.split_to(len);
                self.len -= len;
                if front.is_empty() {
                    self.parts.pop_front();
                }
                bytes
            }
            _ => {
                let mut out = BytesMut::with_capacity(len);
                out.put((&mut *self).take(len));
                out.freeze()
            }
        }
    }
}

/// Whole messages off a request's or a response's body.
pub struct MessageReader {
    body: tonic::body::Body,
    buffered: Chunks,
    /// The largest message taken; a longer one is refused before it is buffered.
    limit: usize,
}

impl MessageReader {
    pub fn new(body: tonic::body::Body, limit: usize) -> Self {
        Self { body, buffered: Chunks::default(), limit }
    }

    /// The next message; `None` when the stream ended cleanly between messages.
    pub async fn next<M: prost::Message + Default>(&mut self) -> Result<Option<M>, Status> {
        loop {
            if let Some((flag, len)) = self.buffered.peek_prefix() {
                if flag != 0 {
                    return Err(Status::invalid_argument("a compressed message on a call that takes none"));
                }
                if len > self.limit {
                    return Err(Status::invalid_argument(format!(
                        "a message of {len} bytes is over the limit of {} bytes",
                        self.limit
                    )));
                }
                if self.buffered.len >= PREFIX + len {
                    self.buffered.advance(PREFIX);
                    let message = self.buffered.split_to(len);
                    return M::decode(message)
                        .map(Some)
                        .map_err(|e| Status::invalid_argument(format!("a malformed message: {e}")));
                }
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffered.push(data);
                    }
                }
                Some(Err(status)) => return Err(status),
                None if self.buffered.len == 0 => return Ok(None),
                None => return Err(Status::invalid_argument("the stream ended inside a message")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn chunks(parts: &[&[u8]]) -> Chunks {
        let mut c = Chunks::default();
        for p in parts {
            c.push(Bytes::copy_from_slice(p));
        }
        c
    }

    #[test]
    fn a_prefix_is_read_across_chunks() {
        let c = chunks(&[&[0, 0], &[0, 1], &[2, 9]]);
        assert_eq!(c.peek_prefix(), Some((0, 258)));
        assert_eq!(chunks(&[&[0, 0, 0, 1]]).peek_prefix(), None, "four bytes are not a prefix");
    }

    #[test]
    fn split_and_advance_keep_the_count() {
        let mut c = chunks(&[b"abc", b"defg", b"h"]);
        let mut head = c.split_to(5);
        assert_eq!((head.remaining(), c.remaining()), (5, 3));
        assert_eq!(head.copy_to_bytes(5), Bytes::from_static(b"abcde"));
        c.advance(2);
        assert_eq!(c.chunk(), b"h");
    }

    #[test]
    fn bytes_inside_one_chunk_are_not_copied() {
        let page = Bytes::from(vec![7u8; 4096]);
        let mut c = Chunks::default();
        c.push(page.clone());
        let got = c.copy_to_bytes(4096);
        assert_eq!(got.as_ptr(), page.as_ptr(), "the same memory");
        let mut spread = chunks(&[b"ab", b"cd"]);
        assert_eq!(spread.copy_to_bytes(3), Bytes::from_static(b"abc"));
        assert_eq!(spread.remaining(), 1);
    }

    #[tokio::test]
    async fn messages_come_back_whatever_the_chunking() {
        let acks: Vec<pb::MigrationAck> = (0..3)
            .map(|i| pb::MigrationAck { stage: format!("S{i}"), received_bytes: i, ..Default::default() })
            .collect();
        let wire: Vec<u8> = acks.iter().flat_map(|a| message(a).to_vec()).collect();
        for size in [1, 3, 7, wire.len()] {
            let parts: Vec<Result<_, Status>> =
                wire.chunks(size).map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c)))).collect();
            let body = http_body_util::StreamBody::new(futures::stream::iter(parts));
            let mut reader = MessageReader::new(tonic::body::Body::new(body), 1 << 20);
            for a in &acks {
                assert_eq!(reader.next::<pb::MigrationAck>().await.unwrap().as_ref(), Some(a), "chunks of {size}");
            }
            assert_eq!(reader.next::<pb::MigrationAck>().await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn bad_streams_are_refused() {
        let read = |wire: Vec<u8>, limit| async move {
            let body = http_body_util::StreamBody::new(futures::stream::iter([Ok::<_, Status>(
                http_body::Frame::data(Bytes::from(wire)),
            )]));
            MessageReader::new(tonic::body::Body::new(body), limit).next::<pb::MigrationAck>().await
        };
        let whole = message(&pb::MigrationAck { stage: "SETUP_DONE".into(), ..Default::default() }).to_vec();
        let e = read(whole[..whole.len() - 1].to_vec(), 1024).await.unwrap_err();
        assert!(e.message().contains("ended inside a message"), "{e:?}");
        let e = read(whole.clone(), 4).await.unwrap_err();
        assert!(e.message().contains("over the limit"), "{e:?}");
        let mut compressed = whole.clone();
        compressed[0] = 1;
        assert!(read(compressed, 1024).await.unwrap_err().message().contains("compressed"));
        let mut garbage = prefix(3).to_vec();
        garbage.extend([0xff, 0xff, 0xff]);
        assert_eq!(read(garbage, 1024).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
