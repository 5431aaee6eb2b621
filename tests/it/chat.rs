//! `--chat`: texts read as a user turn in the model's chat template, rendered and tokenised
//! as transformers' `apply_chat_template` does (tests/fixtures/chat/reference.json, from
//! scripts/reference_chat.py on what `synth --sae-release gemma-scope-2-270m-it-res` writes),
//! with figures over the text's own tokens.

use crate::common::saescope;
use saescope::model::chat::ChatTemplate;
use saescope::model::tokenizer::Tokenizer;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("../fixtures/chat/reference.json")).expect("fixture")
}

/// An instruction-tuned tiny Gemma 3 with its SAEs, as synth writes it.
fn synth_it() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = saescope().args(["synth", "--family", "gemma3", "--sae-release", "gemma-scope-2-270m-it-res", "--out"]).arg(tmp.path()).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tmp
}

#[test]
fn the_chat_template_renders_and_tokenises_as_transformers_does() {
    let tmp = synth_it();
    let model = tmp.path().join("model");
    let files = saescope::model::chat::files_in(&model);
    let template = ChatTemplate::from_files(&files).expect("read").expect("the -it model has a template");
    let tok = Tokenizer::load(Some(&model.join("tokenizer.json")), "<bos>").expect("tokenizer").with_chat(template).expect("chat");
    let again = ChatTemplate::from_files(&files).expect("read").expect("template");
    let frame = tok.frame(false);
    // <bos><start_of_turn>user\n and <end_of_turn>\n<start_of_turn>model\n, a token a
    // character in the synthetic tokenizer (Gemma's own has 4 and 6).
    assert_eq!((frame.lead, frame.trail), (7, 9));
    for case in reference()["texts"].as_array().expect("texts") {
        let text = case["text"].as_str().expect("text");
        assert_eq!(again.render_user(text).expect("render"), case["rendered"].as_str().expect("rendered"), "{text:?}");
        let want: Vec<u32> = case["ids"].as_array().expect("ids").iter().map(|i| i.as_u64().expect("id") as u32).collect();
        assert_eq!(tok.encode_text(text).expect("encode"), want, "{text:?}");
    }
    for case in reference()["constructs"].as_array().expect("constructs") {
        let specials = serde_json::json!({"bos_token": "<bos>", "eos_token": "<eos>"});
        let t =
            ChatTemplate::new(case["template"].as_str().expect("t").into(), specials.as_object().expect("map").clone(), "construct".into()).expect("parses");
        let text = case["text"].as_str().expect("text");
        assert_eq!(t.render_user(text).expect("render"), case["rendered"].as_str().expect("rendered"), "{}", case["template"]);
    }
    // What cannot be read in the frame is refused, not miscounted.
    assert!(tok.encode_text("   ").expect_err("empty").to_string().contains("no tokens of its own"));
    let raising = ChatTemplate::new("{{ raise_exception('roles must alternate') }}".into(), Default::default(), "t".into()).expect("parses");
    assert!(raising.render_user("x").expect_err("raises").to_string().contains("roles must alternate"));
}

#[test]
fn figures_under_chat_count_the_texts_own_tokens() {
    let tmp = synth_it();
    let (model, saes) = (tmp.path().join("model"), tmp.path().join("saes"));
    let run = |args: &[&str]| {
        let out = saescope()
            .arg("--model-dir")
            .arg(&model)
            .arg("--sae-dir")
            .arg(&saes)
            .args(["--sae-release", "gemma-scope-2-270m-it-res", "--no-cache"])
            .args(args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("json")
    };
    // The token view shows the text's own tokens only: the template's stay out of view.
    let text = "  Hello there ";
    let chat = run(&["--chat", "tokens", "--layer", "5", "--id", "3", "--text", text, "--format", "json"]);
    let plain = run(&["tokens", "--layer", "5", "--id", "3", "--text", text, "--format", "json"]);
    let shown = |v: &Value| v["tokens"].as_array().expect("tokens").iter().map(|t| t["token"].as_str().unwrap_or_default().to_string()).collect::<String>();
    assert_eq!(shown(&chat), "Hello there", "trimmed by the template, its own tokens only");
    assert_eq!(shown(&plain), text);
    // The token view's "why next" at a cursor explains what follows the text's own first
    // tokens, and names them without the template's opening.
    let selection = saescope::sae::selection::Selection::from_args("gemma-scope-2-270m-it-res", &[], &[5, 9], Some(&saes), None).expect("selection");
    let opts = saescope::pipeline::RunOptions { chat: true, ..Default::default() };
    let chat_run = saescope::pipeline::Run { model: saescope::source::Source::Dir(model.clone()), saes: selection, device: tch::Device::Cpu, opts };
    let engine = saescope::pipeline::Engine::load(&chat_run, &saescope::runtime::progress::ProgressSink::none()).expect("engine");
    let at = saescope::interp::attribute::attribute_at(&engine, text, Some(3), None, 3).expect("attribute");
    assert_eq!(at.context, "Hel", "{}", at.context);
    // The report reads the samples in the frame (its layers from the folder, as synth prints
    // the command), and its figures move with it.
    let (a, b) = (run(&["--chat", "report", "--format", "json"]), run(&["report", "--format", "json"]));
    let layers = a["categories"][0]["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "layers 5 and 9, as the folder holds");
    assert_ne!(a["categories"], b["categories"], "the template changes what the model reads");
    assert_eq!((&a["chat"], &b["chat"]), (&Value::Bool(true), &Value::Bool(false)), "the report says how it read the texts");
    // Through the stand-in hub: the template comes with the model, fetched under --chat.
    let hub = crate::common::hub::Hub::start();
    hub.repo("google/gemma-3-270m-it", &model, &[]).repo("google/gemma-scope-2-270m-it", &saes, &[]);
    let hf = tempfile::tempdir().expect("hf");
    let out = crate::common::via_hub(&hub, hf.path())
        .args(["--model", "google/gemma-3-270m-it", "--sae-release", "gemma-scope-2-270m-it-res", "--layers", "5,9", "--chat", "--no-cache"])
        .args(["report", "--format", "json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fetched: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(fetched["categories"], a["categories"], "the hub's copy reads the samples in the same frame");
    assert!(hub.log().join("\n").contains("tokenizer_config.json"), "{}", hub.log().join("\n"));
    // A model cached without its template, offline: the download's own error, not "no template".
    let cold = tempfile::tempdir().expect("hf");
    let via = |chat: bool| {
        let mut c = crate::common::via_hub(&hub, cold.path());
        c.args(["--model", "google/gemma-3-270m-it", "--sae-release", "gemma-scope-2-270m-it-res", "--layers", "5,9", "--no-cache"]);
        if chat {
            c.arg("--chat").env("HF_HUB_OFFLINE", "1");
        }
        c.args(["report", "--format", "json"]).output().expect("run")
    };
    assert!(via(false).status.success());
    let out = via(true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("HF_HUB_OFFLINE") && !err.contains("has no chat template"), "{err}");
    // A model without a template says what --chat is for.
    let pt = tempfile::tempdir().expect("tmp");
    let out = saescope().args(["synth", "--family", "gemma3", "--out"]).arg(pt.path()).output().expect("synth");
    assert!(out.status.success());
    let out = saescope()
        .arg("--model-dir")
        .arg(pt.path().join("model"))
        .arg("--sae-dir")
        .arg(pt.path().join("saes"))
        .args(["--chat", "--no-cache", "report"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no chat template") && err.contains("instruction-tuned"), "{err}");
}
