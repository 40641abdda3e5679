//! The bucket of active blocks: the stream `sentryctl fleet init` makes, the check a host makes
//! of the stream it finds before it uses it, and the check of each entry it reads. **Pure.**
//!
//! Every member may put under its own keys (`HOST.NET`), and read all. What a member must not
//! be able to do through the stream's configuration — or through whoever made the stream first —
//! is: erase the others' entries (a put with `Nats-Rollup: all`, a purge, a delete), make its
//! writes appear as another host's (a `republish` rule onto another host's subjects, a mirror or a source fed from elsewhere), or keep several values per key.

use async_nats::jetstream::stream;
use ipnet::IpNet;

use crate::fleet::message::{Body, HostName, Message, MessageError};
use crate::respond::MAX_BLOCK_FOR;

/// The bucket holds this much at most (about 250,000 entries); the oldest go first.
pub const BUCKET_BYTES: i64 = 256 << 20;

/// Why an entry of the bucket was refused.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Its key is not `HOST.NET`.
    #[error("key {0:?} is not HOST.NET")]
    Key(String),
    /// Its value is not a valid message of that host.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A message other than a block or an unblock.
    #[error("not a block or an unblock")]
    NotABlock,
    /// Its message's network is not the one its key names.
    #[error("its message is about {message}, its key names {key}")]
    OtherNetwork {
        /// The message's network.
        message: IpNet,
        /// The key's.
        key: String,
    },
}

/// `HOST.NET` as a key of the bucket: a key is subject tokens, so an IPv6 address's `:` is
/// written `_` (`web-1.2001_db8__1/128`).
pub fn key(host: &HostName, net: IpNet) -> String {
    format!("{host}.{}", net.to_string().replace(':', "_"))
}

/// The bucket of active blocks: `PREFIX` with its dots as dashes, then `-blocks`.
pub fn bucket_name(prefix: &str) -> String {
    format!("{}-blocks", prefix.replace('.', "-"))
}

/// The stream of the bucket of subject prefix `prefix`, as `sentryctl fleet init` makes it: one
/// value per key, no rollup, purge or delete, nothing republished, mirrored or sourced, on
/// disk, entries kept as long as a block may last, [`BUCKET_BYTES`] at most.
pub fn stream_config(prefix: &str) -> stream::Config {
    let name = bucket_name(prefix);
    stream::Config {
        name: format!("KV_{name}"),
        description: Some("scansentry: the fleet's active blocks".into()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: MAX_BLOCK_FOR,
        max_bytes: BUCKET_BYTES,
        max_message_size: i32::try_from(crate::fleet::message::MAX_MESSAGE).unwrap_or(i32::MAX),
        storage: stream::StorageType::File,
        allow_rollup: false,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

/// What is wrong with a stream found for the bucket of `prefix`, or `None` when a host may use
/// it: subjects exactly `$KV.NAME.>`, no rollup, purge and delete denied, one value per key
/// that a new value replaces, limits retention, not sealed, no republish, mirror, sources,
/// subject transform (2.10), message schedules or counters (2.12). A 2.9 server, Debian's, has
/// none of the later ones and says nothing of them.
pub fn refusal(prefix: &str, config: &stream::Config) -> Option<String> {
    let subjects = [format!("$KV.{}.>", bucket_name(prefix))];
    let mut wrong = Vec::new();
    if config.subjects != subjects {
        wrong.push(format!(
            "its subjects are {:?}, not {:?}",
            config.subjects, subjects
        ));
    }
    if config.allow_rollup {
        wrong.push("it allows rollups (one put could erase every entry)".to_string());
    }
    if !config.deny_purge {
        wrong.push("it allows purges".to_string());
    }
    if !config.deny_delete {
        wrong.push("it allows deletes".to_string());
    }
    if config.max_messages_per_subject != 1 {
        wrong.push(format!(
            "it keeps {} values per key, not 1",
            config.max_messages_per_subject
        ));
    }
    if let Some(republish) = &config.republish {
        wrong.push(format!(
            "it republishes {} to {} (a member's writes could arrive as another host's)",
            republish.source, republish.destination
        ));
    }
    if config.mirror.is_some() {
        wrong.push("it is a mirror".to_string());
    }
    if config.sources.as_ref().is_some_and(|s| !s.is_empty()) {
        wrong.push("it has sources".to_string());
    }
    if let Some(transform) = &config.subject_transform {
        wrong.push(format!(
            "it transforms {} to {} (a member's writes could be stored as another host's)",
            transform.source, transform.destination
        ));
    }
    if config.retention != stream::RetentionPolicy::Limits {
        wrong.push(format!(
            "it keeps entries only while unread ({:?} retention)",
            config.retention
        ));
    }
    if config.discard_new_per_subject {
        wrong.push(
            "it refuses a new value for a key (an unblock could not replace its block)".to_string(),
        );
    }
    if config.sealed {
        wrong.push("it is sealed".to_string());
    }
    if config.allow_message_schedules {
        wrong.push("it allows message schedules (a member's message could be published under another host's key)".to_string());
    }
    if config.allow_message_counter {
        wrong.push("it keeps counters, not values".to_string());
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

/// The message of the bucket's entry under `key` (`HOST.NET`, after the bucket's prefix):
/// valid, from `HOST`, a block or an unblock of exactly `NET`.
///
/// # Errors
///
/// When the key, the message or their agreement is wrong.
pub fn entry(key: &str, value: &[u8]) -> Result<Message, EntryError> {
    let Some((host, net)) = key.split_once('.') else {
        return Err(EntryError::Key(key.to_string()));
    };
    let message = Message::decode(value, host)?;
    let (Body::Block { net: said, .. } | Body::Unblock { net: said, .. }) = &message.body else {
        return Err(EntryError::NotABlock);
    };
    if net != said.to_string().replace(':', "_") {
        return Err(EntryError::OtherNetwork {
            message: *said,
            key: net.to_string(),
        });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn bucket_keys_are_subject_tokens_naming_host_and_network() {
        let host = HostName::new("web-1").unwrap();
        assert_eq!(
            key(&host, "203.0.113.9/32".parse().unwrap()),
            "web-1.203.0.113.9/32"
        );
        assert_eq!(
            key(&host, "2001:db8::/64".parse().unwrap()),
            "web-1.2001_db8__/64"
        );
        assert_eq!(bucket_name("corp.scansentry"), "corp-scansentry-blocks");
    }

    #[test]
    fn the_stream_fleet_init_makes_is_one_a_host_uses() {
        let config = stream_config("corp.scansentry");
        assert_eq!(config.name, "KV_corp-scansentry-blocks");
        assert_eq!(refusal("corp.scansentry", &config), None);
        // Another prefix's bucket is not this one's.
        assert!(
            refusal("scansentry", &config)
                .unwrap()
                .contains("its subjects are")
        );
    }

    #[test]
    fn a_stream_that_lets_a_member_erase_or_impersonate_is_refused_saying_why() {
        let base = stream_config("scansentry");
        type Change = fn(&mut stream::Config);
        let cases: [(Change, &str); 8] = [
            (|c| c.allow_rollup = true, "it allows rollups"),
            (|c| c.deny_purge = false, "it allows purges"),
            (|c| c.deny_delete = false, "it allows deletes"),
            (
                |c| c.max_messages_per_subject = 5,
                "it keeps 5 values per key",
            ),
            (
                |c| {
                    c.republish = Some(stream::Republish {
                        source: "$KV.scansentry-blocks.web-2.>".into(),
                        destination: "scansentry.block.web-1".into(),
                        headers_only: false,
                    });
                },
                "it republishes $KV.scansentry-blocks.web-2.> to scansentry.block.web-1",
            ),
            (
                |c| c.subjects.push("scansentry.>".into()),
                "its subjects are",
            ),
            (
                |c| {
                    c.mirror = Some(stream::Source {
                        name: "OTHER".into(),
                        ..Default::default()
                    });
                },
                "it is a mirror",
            ),
            (
                |c| {
                    c.sources = Some(vec![stream::Source {
                        name: "OTHER".into(),
                        ..Default::default()
                    }]);
                },
                "it has sources",
            ),
        ];
        for (change, said) in cases {
            let mut config = base.clone();
            change(&mut config);
            let why = refusal("scansentry", &config).expect("refused");
            assert!(why.contains(said), "{why:?} lacks {said:?}");
        }
    }

    /// Review (R2): fields the check did not look at let whoever made the stream first undo
    /// what it guarantees: a subject transform stores a member's writes under another host's
    /// keys; interest or work-queue retention erases entries once read (or at once, with no
    /// consumer); discard-new-per-subject refuses the put that replaces a block by its unblock;
    /// a sealed stream refuses every put; a message schedule publishes later onto a subject
    /// the schedule names; a counter stream refuses every put that is not an increment.
    /// Without the `server_2_10`/`2_11`/`2_12` features of async-nats these fields were not
    /// even read from the server's answer.
    #[test]
    fn a_stream_that_transforms_subjects_or_drops_entries_is_refused() {
        let base = stream_config("scansentry");
        type Change = fn(&mut stream::Config);
        let cases: [(Change, &str); 7] = [
            (
                |c| c.allow_message_schedules = true,
                "it allows message schedules",
            ),
            (|c| c.allow_message_counter = true, "it keeps counters"),
            (
                |c| {
                    c.subject_transform = Some(stream::SubjectTransform {
                        source: "$KV.scansentry-blocks.web-2.>".into(),
                        destination: "$KV.scansentry-blocks.web-1.>".into(),
                    });
                },
                "it transforms $KV.scansentry-blocks.web-2.> to $KV.scansentry-blocks.web-1.>",
            ),
            (
                |c| c.retention = stream::RetentionPolicy::Interest,
                "it keeps entries only while",
            ),
            (
                |c| c.retention = stream::RetentionPolicy::WorkQueue,
                "it keeps entries only while",
            ),
            (
                |c| c.discard_new_per_subject = true,
                "it refuses a new value for a key",
            ),
            (|c| c.sealed = true, "it is sealed"),
        ];
        for (change, said) in cases {
            let mut config = base.clone();
            change(&mut config);
            let why = refusal("scansentry", &config).expect("refused");
            assert!(why.contains(said), "{why:?} lacks {said:?}");
        }
    }

    fn block(origin: &str, net: &str) -> Vec<u8> {
        let at: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        Message::new(
            HostName::new(origin).unwrap(),
            Body::Block {
                net: net.parse().unwrap(),
                kind: "syn".into(),
                ports: vec!["22/tcp".into()],
                at,
                until: at.saturating_add(std::time::Duration::from_secs(3600)),
            },
        )
        .encode()
        .unwrap()
    }

    #[test]
    fn an_entry_is_taken_only_when_its_key_names_its_origin_and_network() {
        let v6 = block("web-2", "2001:db8::7/128");
        assert!(entry("web-2.2001_db8__7/128", &v6).is_ok());
        let v4 = block("web-2", "203.0.113.9/32");
        assert!(entry("web-2.203.0.113.9/32", &v4).is_ok());
        // Under another network's key: it would outlive, or stand for, another block.
        assert!(matches!(
            entry("web-2.203.0.113.10/32", &v4),
            Err(EntryError::OtherNetwork { .. })
        ));
        assert!(matches!(
            entry("web-2.203.0.113.0/24", &v4),
            Err(EntryError::OtherNetwork { .. })
        ));
        // Under another host's key.
        assert!(matches!(
            entry("web-3.203.0.113.9/32", &v4),
            Err(EntryError::Message(MessageError::NotItsSubject { .. }))
        ));
        assert!(matches!(entry("nodot", &v4), Err(EntryError::Key(_))));
    }
}
