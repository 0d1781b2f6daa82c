//! A node's answers as the client takes them apart: the index listing and
//! the change feed page of the framed transports (lengths in the message,
//! data in the body) and the JSON answers of `https://` nodes.
//!
//! Input: a mode byte, then
//! - mode 0: a `Response` message (postcard) and the frame body; an
//!   `IndexList` is split into entries, each with exactly its length of
//!   data, in order, never more than the body holds, and a `ChangeList`
//!   into its entries' summaries the same way;
//! - mode 1: an index listing in JSON, turned into the framed form and
//!   split the same way: every entry keeps its name, version and data;
//! - mode 2: other JSON answers: node info, errors and health;
//! - mode 3: a change feed page in JSON, turned into the framed form and
//!   split the same way: every entry keeps its name, version, change
//!   number and summary, and the page its feed, next and more.
#![no_main]

use bytes::Bytes;
use cairn_fuzz::Input;
use cairn_net::client::{split_change_list, split_index_list};
use cairn_net::protocol::{NodeInfo, Response, VERSIONS};
use cairn_net::rest::{
    ChangeListJson, ErrorJson, IndexListJson, InfoJson, change_list_response, decode_data,
    error_code, health_protocol, list_response, parse_index_name,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => {
            let len = usize::from(input.u16());
            let message = input.take(len);
            let body = Bytes::copy_from_slice(input.rest());
            match cairn_net::frame::decode::<Response>(message) {
                Ok(Response::IndexList { entries, .. }) => check_split(&entries, body),
                Ok(Response::ChangeList { entries, .. }) => check_change_split(&entries, body),
                _ => {}
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
        2 => {
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
            if let Ok(version) = health_protocol(bytes) {
                assert!(version <= VERSIONS[0]);
            }
        }
        _ => {
            let Ok(list) = serde_json::from_slice::<ChangeListJson>(input.rest()) else {
                return;
            };
            let Ok((
                Response::ChangeList {
                    feed,
                    entries,
                    next,
                    more,
                },
                body,
            )) = change_list_response(list.clone())
            else {
                return;
            };
            assert_eq!((feed, next, more), (list.feed, list.next, list.more));
            let split = split_change_list(entries, body).expect("a page's own body suffices");
            assert_eq!(split.len(), list.entries.len());
            for (change, json) in split.iter().zip(&list.entries) {
                assert_eq!(Some(change.name), parse_index_name(&json.name));
                assert_eq!((change.version, change.seq), (json.version, json.seq));
                assert_eq!(Some(change.summary.to_vec()), decode_data(&json.data));
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

fn check_change_split(entries: &[([u8; 32], u64, u64, u32)], body: Bytes) {
    let needed: u64 = entries.iter().map(|e| u64::from(e.3)).sum();
    match split_change_list(entries.to_vec(), body.clone()) {
        Ok(split) => {
            assert!(needed <= body.len() as u64);
            let mut offset = 0;
            for (change, &(name, version, seq, len)) in split.iter().zip(entries) {
                assert_eq!(
                    (change.name, change.version, change.seq),
                    (name, version, seq)
                );
                let len = len as usize;
                assert_eq!(change.summary, body[offset..offset + len]);
                offset += len;
            }
        }
        Err(_) => assert!(needed > body.len() as u64),
    }
}
