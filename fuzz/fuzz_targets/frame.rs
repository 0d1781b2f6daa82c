//! Frames as a node reads them from a `tcp://` or `quic://` stream, and
//! the request and response messages inside them.
//!
//! Input: the bytes of a stream after the hello. Every frame read is
//! written back and read again (same frame), and every message that
//! decodes as a `Request` or `Response` re-encodes to bytes that decode to
//! the same message.
#![no_main]

use cairn_fuzz::FRAME_LIMITS;
use cairn_net::frame::{self, Frame, FrameError};
use cairn_net::protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    futures::executor::block_on(async {
        let mut reader = data;
        loop {
            match frame::read_frame(&mut reader, &FRAME_LIMITS).await {
                Ok(Some(frame)) => check(&frame).await,
                Ok(None) => break,
                Err(FrameError::Io(e)) => panic!("reading from memory failed: {e}"),
                Err(_) => break,
            }
        }
    });
});

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
