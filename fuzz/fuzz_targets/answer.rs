//! A node's answers as the client takes them apart: the index listing of
//! the framed transports (lengths in the message, data in the body) and
//! the JSON answers of `https://` nodes.
//!
//! Input: a mode byte, then
//! - mode 0: a `Response` message (postcard) and the frame body; an
//!   `IndexList` is split into entries, each with exactly its length of
//!   data, in order, never more than the body holds;
//! - mode 1: an index listing in JSON, turned into the framed form and
//!   split the same way: every entry keeps its name, version and data;
//! - mode 2: other JSON answers: node info and errors.
#![no_main]

use bytes::Bytes;
use cairn_fuzz::Input;
use cairn_net::client::split_index_list;
use cairn_net::protocol::{NodeInfo, Response};
use cairn_net::rest::{
    ErrorJson, IndexListJson, InfoJson, decode_data, error_code, list_response, parse_index_name,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 3 {
        0 => {
            let len = usize::from(input.u16());
            let message = input.take(len);
            let body = Bytes::copy_from_slice(input.rest());
            if let Ok(Response::IndexList { entries, .. }) =
                cairn_net::frame::decode::<Response>(message)
            {
                check_split(&entries, body);
            }
        }
        1 => {
            let Ok(list) = serde_json::from_slice::<IndexListJson>(input.rest()) else {
                return;
            };
            let Ok((Response::IndexList { entries, more }, body)) = list_response(list.clone())
            else {
                return;
            };
            assert_eq!(more, list.more);
            let split = split_index_list(entries, body).expect("a listing's own body suffices");
            assert_eq!(split.len(), list.entries.len());
            for (entry, json) in split.iter().zip(&list.entries) {
                assert_eq!(Some(entry.name), parse_index_name(&json.name));
                assert_eq!(entry.version, json.version);
                assert_eq!(Some(entry.data.to_vec()), decode_data(&json.data));
            }
        }
        _ => {
            let bytes = input.rest();
            if let Ok(info) = serde_json::from_slice::<InfoJson>(bytes)
                && let Ok(node) = NodeInfo::try_from(info.clone())
            {
                assert_eq!(node.node_id.to_string(), info.node_id.to_lowercase());
            }
            if let Ok(error) = serde_json::from_slice::<ErrorJson>(bytes)
                && let Some(code) = error_code(&error.error)
            {
                assert_eq!(code.as_str(), error.error);
            }
        }
    }
});

fn check_split(entries: &[([u8; 32], u64, u32)], body: Bytes) {
    let needed: u64 = entries.iter().map(|e| u64::from(e.2)).sum();
    match split_index_list(entries.to_vec(), body.clone()) {
        Ok(split) => {
            assert!(needed <= body.len() as u64);
            let mut offset = 0;
            for (entry, &(name, version, len)) in split.iter().zip(entries) {
                assert_eq!((entry.name, entry.version), (name, version));
                let len = len as usize;
                assert_eq!(entry.data, body[offset..offset + len]);
                offset += len;
            }
        }
        Err(_) => assert!(needed > body.len() as u64),
    }
}
