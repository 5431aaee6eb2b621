//! Property tests of everything that parses user-supplied or on-disk bytes: any input
//! ends in Ok or a clear error, never a panic.

use proptest::prelude::*;
use saescope::activations::cache::{decode, text_key, Cache, CacheEntry, ReadOutcome};
use saescope::corpus::samples::Samples;
use saescope::sae::SaeConfig;
use saescope::weights::tensors::SafeFile;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn samples_parser_never_panics(src in any::<String>()) {
        let _ = Samples::parse(&src, "fuzz.toml");
    }

    #[test]
    fn samples_parser_on_toml_like_text(
        names in proptest::collection::vec("[A-Za-z \\\\\"]{0,8}", 0..4),
        texts in proptest::collection::vec("[ -~\\n]{0,12}", 0..4),
    ) {
        let mut src = String::new();
        for n in &names {
            src.push_str(&format!("[[category]]\nname = \"{n}\"\ntexts = [{}]\n", texts.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ")));
        }
        match Samples::parse(&src, "fuzz.toml") {
            Ok(s) => prop_assert!(s.categories.iter().all(|c| !c.name.is_empty() && !c.texts.is_empty())),
            Err(e) => prop_assert!(e.to_string().starts_with("fuzz.toml:"), "{e}"),
        }
    }

    #[test]
    fn safetensors_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), header in "[ -~]{0,64}") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        let mut with_header = (header.len() as u64).to_le_bytes().to_vec();
        with_header.extend_from_slice(header.as_bytes());
        with_header.extend_from_slice(&bytes);
        for data in [&bytes, &with_header] {
            std::fs::write(&p, data).unwrap();
            if let Ok(f) = SafeFile::open(&p) {
                for n in f.names() {
                    let _ = f.tensor(&n, &[1]);
                }
            }
        }
    }

    #[test]
    fn sae_config_never_panics(src in "\\{(\"[a-z_]{1,12}\": ?(\"[a-z_]{0,10}\"|[0-9]{1,6}|true|null|\\{\\}), ?){0,6}\"d_in\": ?[0-9]{1,4}\\}") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&src) {
            let _ = SaeConfig::from_json(&v);
        }
    }

    #[test]
    fn cache_entries_and_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let id = text_key("identity");
        std::fs::write(cache.path(&id), &bytes).unwrap();
        let mut n = 0;
        let outcome = cache.read(&id, |_, _| n += 1);
        prop_assert!(matches!(outcome, ReadOutcome::Corrupt { .. } | ReadOutcome::Complete { entries: 0 }), "{outcome:?}");
    }

    #[test]
    fn cache_round_trips_and_detects_any_flipped_byte(
        vals in proptest::collection::vec(0.01f32..100.0, 1..20),
        flip in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let id = text_key("weights");
        let idx: Vec<u32> = (0..vals.len() as u32).map(|i| i * 3).collect();
        let entry = CacheEntry { key: text_key("a text"), n_tokens: 7, vectors: vec![saescope::activations::SparseVec { idx, val: vals }] };
        let mut w = cache.writer(&id).unwrap();
        w.entry(&entry).unwrap();
        w.commit().unwrap();
        let mut got = Vec::new();
        prop_assert_eq!(cache.read(&id, |e, _| got.push(e)), ReadOutcome::Complete { entries: 1 });
        prop_assert_eq!(&got[0], &entry);
        let path = cache.path(&id);
        let mut bytes = std::fs::read(&path).unwrap();
        let i = flip.index(bytes.len());
        bytes[i] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        got.clear();
        let outcome = cache.read(&id, |e, _| got.push(e));
        prop_assert!(matches!(outcome, ReadOutcome::Corrupt { entries: 0, .. }), "byte {i}: {outcome:?}");
        prop_assert!(got.is_empty());
    }
}
