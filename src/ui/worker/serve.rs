//! The model thread's second life: once the results are in, it answers the explorer's
//! requests (cards, token views, your own text, steering, attribution, the open questions,
//! an SAE's quality) one at a time with the engine it owns.

use super::{fault, guarded, one_line, Msg, WorkerJob};
use crate::corpus::samples::Samples;
use crate::neuronpedia::labels::Labels;
use crate::pipeline::{Engine, RunOptions};
use crate::runtime::progress::ProgressSink;
use crate::ui::action::{Reply, WorkerRequest};
use std::sync::mpsc::Receiver;

/// What the model thread answers requests with, beside the engine.
#[derive(Default)]
pub struct Knows {
    pub labels: Labels,
    pub neuronpedia: Option<crate::neuronpedia::dump::Dump>,
    /// The samples and their final results, for the open questions and the SAE quality.
    pub samples: Option<Samples>,
    pub computed: Option<(crate::activations::ActivationSet, crate::analysis::Analysis)>,
    /// The corpus index once built or found: the open questions take its firing rates.
    pub corpus: Option<std::sync::Arc<crate::dashboard::Index>>,
    pub opts: RunOptions,
    pub progress: ProgressSink,
    /// `--transcoders`: what graphs are made over, read on the first graph asked for.
    pub transcoders: Option<crate::graph::transcoders::Set>,
    pub loaded_transcoders: std::cell::OnceCell<crate::graph::transcoders::Transcoders>,
}

impl Knows {
    /// The transcoders, read the first time a graph needs them.
    fn transcoders(&self, engine: &Engine) -> color_eyre::Result<&crate::graph::transcoders::Transcoders> {
        if let Some(t) = self.loaded_transcoders.get() {
            return Ok(t);
        }
        let set = self.transcoders.as_ref().ok_or_else(|| color_eyre::eyre::eyre!("graphs need transcoders: start saescope with --transcoders DIR"))?;
        self.progress.stage(format!("loading transcoders {}", set.label()));
        let m = engine.model.as_ref();
        let t = set.load(m.n_layers(), m.d_model(), m.device(), m.kind(), &self.progress)?;
        Ok(self.loaded_transcoders.get_or_init(|| t))
    }

    fn samples(&self) -> color_eyre::Result<&Samples> {
        self.samples.as_ref().ok_or_else(|| color_eyre::eyre::eyre!("the samples are not known to the model thread"))
    }
}

/// Answers one request with the engine; `partial` hears of steering as it generates.
pub fn handle(engine: &Engine, knows: &Knows, include_bos: bool, request: WorkerRequest, partial: &mut dyn FnMut(Reply)) -> Reply {
    let asked = request.clone();
    let outcome = match request {
        WorkerRequest::Card(mut card) => card.complete(engine, &knows.labels, include_bos).and_then(|_| {
            let (layer, feature) = (card.sae, card.feature);
            if let Some(c) = card.corpus.as_mut() {
                crate::dashboard::shade::shade(engine, layer, feature, &mut c.contexts_mut())?;
            }
            if let Some(d) = &knows.neuronpedia {
                card.neuronpedia = d.feature(layer, feature)?;
            }
            Ok(Reply::Card(card))
        }),
        WorkerRequest::Tokens(text) => crate::interp::lens::token_activations(engine, &text, include_bos).map(|t| Reply::Tokens(text, t)),
        WorkerRequest::AdHoc(text) => crate::interp::lens::token_activations(engine, &text, include_bos).map(|t| Reply::AdHoc(text, t)),
        WorkerRequest::Steer { prompt, features, mode, tokens } => {
            let s = crate::interp::steer::Sampling { tokens, temperature: 0.0, seed: 0 };
            let mut tell = |so_far: &crate::interp::steer::Steered| partial(Reply::SteerProgress(Box::new(so_far.clone())));
            crate::interp::steer::steer_streaming(engine, &prompt, &features, mode, s, &mut tell).map(|r| Reply::Steered(Box::new(r)))
        }
        WorkerRequest::Attribute { prompt, target, upto } => {
            crate::interp::attribute::attribute_at(engine, &prompt, upto, target.as_deref(), ATTRIBUTE_TOP).map(|r| Reply::Attributed(Box::new(r)))
        }
        WorkerRequest::Graph { prompt, upto } => knows.transcoders(engine).and_then(|tcs| {
            let ids = crate::interp::attribute::prompt_tokens(engine, &prompt, upto)?;
            knows.progress.stage(format!("attributing {} tokens", ids.len()));
            let scan = knows.transcoders.as_ref().map_or_else(String::new, crate::graph::transcoders::Set::label);
            let opts = crate::graph::Options { skip_positions: crate::graph::skip_positions(engine), ..Default::default() };
            let built = crate::graph::build::build(engine, tcs, &ids, &opts, crate::graph::build::Prune::default(), "saescope-graph", &scan)?;
            Ok(Reply::Graph { prompt, upto, line: built.short_line(), file: Box::new(built.file) })
        }),
        WorkerRequest::Intervene { prompt, upto, features, scale } => knows.transcoders(engine).and_then(|tcs| {
            let ids = crate::interp::attribute::prompt_tokens(engine, &prompt, upto)?;
            let compared = crate::graph::intervene::compare(engine, tcs, &ids, &features, scale)?;
            Ok(Reply::Intervened { prompt, upto, compared: Box::new(compared) })
        }),
        WorkerRequest::Questions => knows.samples().and_then(|samples| {
            let (set, analysis) = knows.computed.as_ref().ok_or_else(|| color_eyre::eyre::eyre!("the results are not in yet"))?;
            let texts = crate::analysis::questions::texts(engine, samples, &knows.opts, &knows.progress)?;
            crate::analysis::questions::measure(engine, set, analysis, texts, knows.corpus.as_deref(), knows.opts.batch_tokens, &knows.progress)
                .map(|q| Reply::Questions(Box::new(q)))
        }),
        WorkerRequest::Quality(key) => knows.samples().and_then(|samples| {
            let ids = engine.tokenize(samples, &knows.opts, &knows.progress)?;
            let opts = crate::analysis::eval::EvalOptions { only: Some(key), ..crate::analysis::eval::EvalOptions::all(knows.opts.batch_tokens) };
            let q = crate::analysis::eval::evaluate(engine, &ids, "the samples".into(), &opts, &knows.progress)?;
            q.saes.into_iter().next().map(|q| Reply::Quality(key, Box::new(q))).ok_or_else(|| color_eyre::eyre::eyre!("SAE {key} is not loaded"))
        }),
    };
    outcome.unwrap_or_else(|e| Reply::Failed { request: asked, why: one_line(&e) })
}

/// Features per layer the attribute screen lists.
const ATTRIBUTE_TOP: usize = 10;

/// Answers requests until the explorer hangs up, loading the model (or all of its blocks)
/// when a request needs more than the results' run left loaded.
pub(super) fn serve(
    job: &WorkerJob,
    mut engine: Option<Engine>,
    knows: &Knows,
    requests: Receiver<WorkerRequest>,
    progress: &ProgressSink,
    tx: &dyn Fn(Msg) -> bool,
) {
    for request in requests {
        // Everything came from the result cache: the model loads on the first request.
        if engine.is_none() {
            progress.stage("loading the model for this view");
            match Engine::load(&job.run, progress) {
                Ok(e) => engine = Some(e),
                Err(e) => {
                    tx(Msg::Reply(Reply::Failed { request, why: one_line(&e) }));
                    continue;
                }
            }
        }
        // Generation and gradients need the whole model; the explorer loaded only the
        // blocks its layers read. Reload once, with every block.
        let whole = matches!(
            request,
            WorkerRequest::Steer { .. }
                | WorkerRequest::Attribute { .. }
                | WorkerRequest::Quality(_)
                | WorkerRequest::Graph { .. }
                | WorkerRequest::Intervene { .. }
        );
        if whole && engine.as_ref().is_some_and(|e| e.model.n_blocks() < e.model.n_layers()) {
            progress.stage("loading the whole model for generation");
            engine = None;
            let loaded = crate::pipeline::Resolved::new(&job.run.model, &job.run.saes, progress)
                .and_then(|r| r.load_all_blocks(job.run.device, &job.run.opts, progress));
            match loaded {
                Ok(e) => engine = Some(e),
                Err(e) => {
                    tx(Msg::Reply(Reply::Failed { request, why: one_line(&e) }));
                    continue;
                }
            }
        }
        if let Some(e) = &engine {
            let asked = request.clone();
            let reply = guarded("answering a view", || {
                fault("panic-serving");
                handle(e, knows, job.run.opts.include_bos, request, &mut |r| {
                    tx(Msg::Reply(r));
                })
            });
            if !tx(Msg::Reply(reply.unwrap_or_else(|why| Reply::Failed { request: asked, why }))) {
                return;
            }
        }
    }
}
