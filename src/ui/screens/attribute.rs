//! A prompt's next token attributed to features: every loaded SAE's top features by
//! activation x gradient with their ablation effects, in one list; Enter opens a card.

use super::{distance, step, ScreenStep};
use crate::interp::attribute::Attribution;
use crate::ui::action::{Action, Effect, InputKind, WorkerRequest};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeScreen {
    pub prompt: String,
    /// The prediction after the prompt's first `upto` tokens (the token view's cursor);
    /// None: after all of it.
    pub upto: Option<usize>,
    /// The token to explain; None: the model's top one.
    pub target: Option<String>,
    pub result: Option<Box<Attribution>>,
    pub row: usize,
    pub failed: Option<String>,
    pub scroll: crate::ui::offset::Offset,
}

impl AttributeScreen {
    /// The screen for `prompt`, asking the model thread for its attribution.
    pub fn open(prompt: String, out: &mut Vec<Effect>) -> Self {
        Self::open_at(prompt, None, out)
    }

    /// The screen for the prediction after `prompt`'s first `upto` tokens.
    pub fn open_at(prompt: String, upto: Option<usize>, out: &mut Vec<Effect>) -> Self {
        let s = Self { prompt, upto, ..Default::default() };
        s.ask(out);
        s
    }

    fn ask(&self, out: &mut Vec<Effect>) {
        out.push(Effect::Worker(WorkerRequest::Attribute { prompt: self.prompt.clone(), target: self.target.clone(), upto: self.upto }));
    }

    /// Explains `target` (a token) instead; empty: the model's top token again.
    pub fn retarget(&mut self, target: String, out: &mut Vec<Effect>) {
        self.target = Some(target).filter(|t| !t.is_empty());
        self.result = None;
        self.failed = None;
        self.row = 0;
        self.ask(out);
    }

    /// (SAE, feature) of each row, in the order drawn.
    pub fn rows(&self) -> Vec<(crate::sae::key::SaeKey, u32)> {
        self.result.as_ref().map_or_else(Vec::new, |r| r.saes.iter().flat_map(|l| l.features.iter().map(move |f| (l.sae, f.feature))).collect())
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Some(by) = distance(action) {
            self.row = step(self.row, by, self.rows().len());
            return ScreenStep::Done;
        }
        match action {
            Action::OpenCard | Action::FocusCategory => match self.rows().get(self.row) {
                Some(&(layer, f)) => super::card::open(ctx, layer, f, out),
                None => ScreenStep::Done,
            },
            Action::InputText | Action::Attribute => ScreenStep::Input(InputKind::AttributePrompt, self.prompt.clone()),
            Action::Target => ScreenStep::Input(InputKind::AttributeTarget, self.target.clone().unwrap_or_default()),
            _ => ScreenStep::Pass,
        }
    }

    pub fn click(&mut self, target: Target) {
        if let Target::AttributeRow(i) = target {
            self.row = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        panes::attribute::draw(f, self, ctx, hits, area);
    }
}
