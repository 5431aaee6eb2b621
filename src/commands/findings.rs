//! `saescope findings`: the study's four findings checked on this data and its open
//! questions measured (questions/), or both on two runs side by side (`--versus-model`),
//! each over the same samples.

use super::analysed;
use crate::commands::cli::{CardFormat, Common, VersusArgs};
use color_eyre::eyre::Result;
use saescope::analysis::findings::Finding;
use saescope::analysis::questions::OpenQuestions;
use saescope::runtime::progress::ProgressSink;
use serde::Serialize;

/// What `--format json` writes: the findings and the answers in one list (side by side
/// with a second run), then every number behind the answers, per run.
#[derive(Serialize)]
struct Out<T: Serialize> {
    findings: T,
    open_questions: Vec<OpenQuestions>,
}

/// One run's findings followed by its open questions' answers, and the measurements.
pub fn run_findings(c: &Common) -> Result<(Vec<Finding>, OpenQuestions)> {
    let (done, analysis) = analysed(c)?;
    let progress = ProgressSink::stderr();
    let (run, _) = super::setup(c)?;
    let engine = match done.engine {
        Some(e) => e,
        None => saescope::pipeline::Engine::load(&run, &progress)?,
    };
    let samples = super::samples(c)?;
    let texts = saescope::analysis::questions::texts(&engine, &samples, &run.opts, &progress)?;
    progress.stage("measuring the open questions");
    let corpus = super::index::stored_index(c)?;
    let questions = saescope::analysis::questions::measure(&engine, &done.set, &analysis, texts, corpus.as_ref(), c.text_batch_tokens(), &progress)?;
    let mut list = saescope::analysis::findings::findings(&analysis, &done.set.categories);
    list.extend(questions.answers());
    Ok((list, questions))
}

pub fn findings(c: &Common, versus: &VersusArgs, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    if let Some(o) = &output {
        saescope::runtime::fsio::check_writable(o)?;
    }
    let (list, questions) = run_findings(c)?;
    let Some(second) = versus.common(c) else {
        let strips = questions.saes.last().map(|s| questions.strips_text(s)).unwrap_or_default();
        let text = |o: &Out<Vec<Finding>>| {
            format!(
                "{}Token strips at {}: each category's top feature in its strongest text, as it is and shuffled\n{strips}",
                saescope::analysis::findings::text(&o.findings),
                questions.saes.last().map_or("", String::as_str)
            )
        };
        return super::emit(&Out { findings: list.clone(), open_questions: vec![questions.clone()] }, format, text, output);
    };
    let (list2, questions2) = run_findings(&second)?;
    let runs = [(c.run_label(), list), (second.run_label(), list2)];
    let compared = saescope::analysis::findings::side_by_side(&runs);
    super::emit(
        &Out { findings: compared, open_questions: vec![questions, questions2] },
        format,
        |o| saescope::analysis::findings::side_by_side_text(&o.findings),
        output,
    )
}
