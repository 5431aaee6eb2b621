//! A prompt's attribution graph: the pruned graph as layers by token positions, one node
//! selected with its strongest edges in and out, groups of nodes gathered by hand with the
//! edges between them, a node threshold, and an ablation of the group that shows whether
//! the graph's claim holds. Reading the graph is graph/reading.rs; this is its state.

use super::ScreenStep;
use crate::graph::intervene::{Compared, Intervention};
use crate::graph::json::File;
use crate::graph::reading::{Kind, Reading, Toward};
use crate::ui::action::{Action, Effect, InputKind, WorkerRequest};
use crate::ui::context::{Asked, Context};
use crate::ui::hits::{HitMap, Target};
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

/// What `<` and `>` move the node threshold by.
const THRESHOLD_STEP: f64 = 0.05;

/// The loaded SAE that is the transcoder of a graph's feature `layer:feature`: one reading
/// that layer's MLP input, wide enough. Its card and its label are that feature's.
pub fn transcoder_sae(ctx: &Context, layer: usize, feature: u32) -> Option<crate::sae::key::SaeKey> {
    use crate::model::hooks::Site;
    ctx.saes.iter().copied().find(|k| k.hook.layer == layer && matches!(k.hook.site, Site::MlpIn | Site::Ln2Normalized) && (feature as usize) < k.width)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphScreen {
    pub prompt: String,
    /// The prediction after the prompt's first `upto` tokens (the token view's cursor);
    /// None: after all of it.
    pub upto: Option<usize>,
    pub reading: Option<Box<Reading>>,
    /// How the graph was made (rows, seconds, scores), or the file it was read from.
    pub line: String,
    pub failed: Option<String>,
    /// Nodes whose cumulative influence is above it are hidden (tokens and logits never).
    pub threshold: f64,
    pub selected: usize,
    /// Groups of node indices (supernodes); the last is the one Space adds to.
    pub groups: Vec<Vec<usize>>,
    /// The last ablation of the group (or node): its features, and what it did.
    pub ablation: Option<(Vec<Intervention>, Asked<Box<Compared>>)>,
}

impl GraphScreen {
    /// The screen for `prompt` (its first `upto` tokens), asking the model thread for its graph.
    pub fn open(prompt: String, upto: Option<usize>, out: &mut Vec<Effect>) -> Self {
        out.push(Effect::Worker(WorkerRequest::Graph { prompt: prompt.clone(), upto }));
        Self { prompt, upto, ..Default::default() }
    }

    /// A graph already made (a file, or the model thread's answer).
    pub fn of_file(file: File, line: String) -> Self {
        // The prompt as the model thread takes it to ablate: the file's tokens after BOS,
        // which it adds again (the file's own `prompt` starts with BOS's text).
        let after_bos = file.metadata.prompt_tokens.get(1..).map(|t| t.concat()).filter(|p| !p.is_empty());
        let mut s = Self { prompt: after_bos.unwrap_or_else(|| file.metadata.prompt.clone()), ..Default::default() };
        s.set(file, line);
        s
    }

    /// The graph arrives: read it, select the target logit, keep the file's threshold.
    pub fn set(&mut self, file: File, line: String) {
        self.threshold = file.metadata.node_threshold.unwrap_or(0.8);
        match Reading::new(file) {
            Ok(r) => {
                self.selected = r.start();
                self.reading = Some(Box::new(r));
                self.line = line;
                self.failed = None;
            }
            Err(e) => self.failed = Some(e.to_string()),
        }
        self.groups.clear();
        self.ablation = None;
    }

    /// The features an ablation switches off: the current group's, else the selected node.
    pub fn to_ablate(&self) -> Vec<Intervention> {
        let Some(r) = &self.reading else { return Vec::new() };
        let nodes = match self.groups.last() {
            Some(g) if !g.is_empty() => g.clone(),
            _ => vec![self.selected],
        };
        nodes
            .into_iter()
            .filter(|&i| r.kinds[i] == Kind::Feature)
            .filter_map(|i| Some(Intervention { layer: r.layer[i]?, feature: r.feature[i]?, pos: r.places[i].pos, value: 0.0 }))
            .collect()
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Action::InputText | Action::Graph = action {
            return ScreenStep::Input(InputKind::GraphPrompt, self.prompt.clone());
        }
        let Some(r) = self.reading.as_deref() else { return ScreenStep::Pass };
        let move_to = |to| r.neighbour(self.selected, to, self.threshold);
        let next = match action {
            Action::PrevLayer => move_to(Toward::Left),
            Action::NextLayer => move_to(Toward::Right),
            Action::Up | Action::PageUp => move_to(Toward::Up),
            Action::Down | Action::PageDown => move_to(Toward::Down),
            Action::NextFeature => r.strongest(self.selected, true, self.threshold),
            Action::PrevFeature => r.strongest(self.selected, false, self.threshold),
            Action::Home | Action::End => Some(r.start()),
            _ => None,
        };
        if let Some(n) = next {
            self.selected = n;
            return ScreenStep::Done;
        }
        match action {
            Action::PrevLayer
            | Action::NextLayer
            | Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::NextFeature
            | Action::PrevFeature => {}
            Action::TokenLeft | Action::TokenRight => {
                let by = if *action == Action::TokenRight { THRESHOLD_STEP } else { -THRESHOLD_STEP };
                self.threshold = ((self.threshold + by) * 100.0).round().clamp(0.0, 100.0) / 100.0;
                // A hidden selection moves to the target logit, which always shows.
                if !r.shown(self.selected, self.threshold) {
                    self.selected = r.start();
                }
            }
            Action::ToggleMark => {
                if self.groups.is_empty() {
                    self.groups.push(Vec::new());
                }
                if let Some(g) = self.groups.last_mut() {
                    match g.iter().position(|&i| i == self.selected) {
                        Some(k) => {
                            g.remove(k);
                        }
                        None => g.push(self.selected),
                    }
                }
            }
            Action::StrengthUp => {
                if self.groups.last().is_none_or(|g| !g.is_empty()) {
                    self.groups.push(Vec::new());
                }
            }
            Action::Remove => {
                let features = self.to_ablate();
                if features.is_empty() {
                    ctx.message = Some("nothing to ablate: select a feature (●), or group features with Space".into());
                } else {
                    out.push(Effect::Worker(WorkerRequest::Intervene { prompt: self.prompt.clone(), upto: self.upto, features: features.clone(), scale: 0.0 }));
                    self.ablation = Some((features, Asked::Pending));
                }
            }
            Action::OpenCard | Action::FocusCategory => return self.open_card(ctx, out),
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    /// The selected feature's card, when the explorer has its transcoder loaded as an SAE.
    fn open_card(&self, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        let Some(r) = self.reading.as_deref() else { return ScreenStep::Done };
        let (Some(layer), Some(feature)) = (r.layer[self.selected], r.feature[self.selected]) else {
            ctx.message = Some("a card is a feature's: select a feature node (●)".into());
            return ScreenStep::Done;
        };
        match transcoder_sae(ctx, layer, feature) {
            Some(sae) => super::card::open(ctx, sae, feature, out),
            None => {
                ctx.message = Some(format!(
                    "feature {layer}:{feature} has no card here: load its transcoder or CLT as an SAE (--sae-dir DIR --sae blocks.{layer}.hook_mlp_in)"
                ));
                ScreenStep::Done
            }
        }
    }

    pub fn click(&mut self, target: Target) {
        if let Target::GraphNode(i) = target {
            self.selected = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        panes::graph::draw(f, self, ctx, hits, area);
    }
}
