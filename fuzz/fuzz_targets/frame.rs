//! Frames as a node reads them from a `tcp://` or `quic://` stream, and
//! the request and response messages inside them.
//!
//! Input: the bytes of a stream after the hello. Every frame read is
//! written back and read again (same frame), and every message that
//! decodes as a `Request` or `Response` re-encodes to bytes that decode to
//! the same message. The sans-IO decoder the connections use, reading
//! ahead and fed in small pieces, finds the same frames and ends the same
//! way as `read_frame`, which reads exactly each frame.
#![no_main]

use cairn_fuzz::FRAME_LIMITS;
use cairn_net::frame::{self, Decoded, Frame, FrameDecoder, FrameError};
use cairn_net::protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (frames, end) = futures::executor::block_on(async {
        let mut reader = data;
        let mut frames = Vec::new();
        loop {
            match frame::read_frame(&mut reader, &FRAME_LIMITS).await {
                Ok(Some(frame)) => {
                    check(&frame).await;
                    frames.push(frame);
                }
                Ok(None) => break (frames, None),
                Err(FrameError::Io(e)) => panic!("reading from memory failed: {e}"),
                Err(e) => break (frames, Some(e.to_string())),
            }
        }
    });
    let (pieces, pieces_end) = decode_in_pieces(data);
    assert_eq!(pieces, frames, "the decoder found other frames");
    assert_eq!(pieces_end, end, "the decoder ended otherwise");
});

/// The frames in `data` as the connections decode them: with read-ahead,
/// fed in pieces of a size the input picks; and how the stream ended.
fn decode_in_pieces(data: &[u8]) -> (Vec<Frame>, Option<String>) {
    let mut decoder = FrameDecoder::new(FRAME_LIMITS).with_read_ahead(1024);
    let piece = 1 + data.len() % 13;
    let mut rest = data;
    let mut frames = Vec::new();
    loop {
        match decoder.poll_decode() {
            Ok(Some(Decoded::Length(_))) => {
                decoder.proceed();
                continue;
            }
            Ok(Some(Decoded::Frame(frame))) => {
                frames.push(frame);
                continue;
            }
            Ok(None) => {}
            Err(e) => return (frames, Some(e.to_string())),
        }
        if rest.is_empty() {
            return (frames, decoder.handle_end().err().map(|e| e.to_string()));
        }
        let took = decoder.push(&rest[..piece.min(rest.len())]);
        assert!(took > 0, "the decoder took nothing");
        rest = &rest[took..];
    }
}

async fn check(frame: &Frame) {
    assert!(frame.message.len() <= FRAME_LIMITS.max_message_len);
    assert!(8 + frame.message.len() + frame.body.len() <= FRAME_LIMITS.max_frame_len());
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, frame.stream, &frame.message, &frame.body)
        .await
        .expect("writing to memory");
    let back = frame::read_frame(&mut &wire[..], &FRAME_LIMITS)
        .await
        .expect("a written frame reads back")
        .expect("not at the end");
    assert_eq!(&back, frame);

    if let Ok(request) = frame::decode::<Request>(&frame.message) {
        let _ = (request.kind(), request.has_body(), format!("{request:?}"));
        let bytes = frame::encode(&request);
        let again: Request = frame::decode(&bytes).expect("an encoded request decodes");
        assert_eq!(frame::encode(&again), bytes);
    }
    if let Ok(response) = frame::decode::<Response>(&frame.message) {
        let bytes = frame::encode(&response);
        let again: Response = frame::decode(&bytes).expect("an encoded response decodes");
        assert_eq!(again, response);
    }
}
