//! A feature's card, opened from a table, the token view, a search hit or the SAE
//! overview: it scrolls, opens the Neuronpedia page, and leads to the feature's token
//! view. With a corpus index it shows the corpus sections (docs/dashboards.md):
//! ↑/↓ then select a context and Enter opens it whole.

use super::{Screen, ScreenStep};
use crate::interp::card::Card;
use crate::ui::action::{Action, Effect, WorkerRequest};
use crate::ui::context::Context;
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, PartialEq)]
pub struct CardScreen {
    pub card: Card,
    pub scroll: usize,
    /// Why the model thread could not fill in the weight-derived parts.
    pub failed: Option<String>,
    /// The selected corpus context: top contexts first, then the interval samples.
    pub row: usize,
    /// Each context token's value next to it.
    pub values: bool,
}

/// Opens the card of `feature` of SAE `sae` from the results, asking for its weight-derived
/// parts; stays put (with a message) when it cannot be made yet.
pub fn open(ctx: &mut Context, sae: crate::sae::key::SaeKey, feature: u32, out: &mut Vec<Effect>) -> ScreenStep {
    let Some(r) = &ctx.results else {
        ctx.message = Some("results are still computing".into());
        return ScreenStep::Done;
    };
    match Card::from_set(&r.set, &ctx.labels, sae, feature) {
        Ok(mut card) => {
            // The corpus sections show at once from the index; the model thread shades them.
            card.corpus = ctx.index.as_ref().and_then(|i| i.feature(sae, feature));
            out.push(Effect::Worker(WorkerRequest::Card(Box::new(card.clone()))));
            ScreenStep::Open(Screen::Card(Box::new(CardScreen { card, scroll: 0, failed: None, row: 0, values: false })))
        }
        Err(e) => {
            ctx.message = Some(e.to_string());
            ScreenStep::Done
        }
    }
}

impl CardScreen {
    /// The corpus contexts in the order the card lists them.
    pub fn contexts(&self) -> Vec<&crate::dashboard::ContextWindow> {
        self.card.corpus.as_ref().map_or_else(Vec::new, |c| c.contexts())
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        let n = self.contexts().len();
        // With contexts to choose from, ↑/↓ select one and PgUp/PgDn scroll the other side.
        match (n, super::distance(action)) {
            (1.., Some(by)) if !matches!(action, Action::PageUp | Action::PageDown) => {
                self.row = super::step(self.row, by, n);
                return ScreenStep::Done;
            }
            _ if super::scroll(&mut self.scroll, action) => return ScreenStep::Done,
            _ => {}
        }
        match action {
            Action::OpenCard | Action::FocusCategory if n > 0 => {
                let Some(c) = self.contexts().get(self.row).map(|c| (*c).clone()) else { return ScreenStep::Done };
                let view = super::ContextScreen { sae: self.card.sae, feature: self.card.feature, context: c, values: self.values, scroll: 0 };
                return ScreenStep::Open(Screen::Context(Box::new(view)));
            }
            Action::ToggleValues => self.values = !self.values,
            Action::OpenUrl => match &self.card.neuronpedia_url {
                Some(url) => out.push(Effect::OpenUrl(url.clone())),
                None => ctx.message = Some("no Neuronpedia page is known for this SAE (its cfg.json names no neuronpedia_id)".into()),
            },
            Action::Tokens => {
                if let Some(i) = ctx.saes.iter().position(|&l| l == self.card.sae) {
                    ctx.sae_idx = i;
                }
                return ScreenStep::Open(Screen::Tokens(super::TokensScreen::open(self.card.feature, ctx, out)));
            }
            Action::Steer => {
                let (sae, feature) = (self.card.sae, self.card.feature);
                if !ctx.steering.iter().any(|s| s.sae == sae.to_string() && s.feature == feature) {
                    ctx.steering.push(crate::interp::steer::Steer::new(sae, feature, super::steer::DEFAULT_STRENGTH));
                }
                let row = ctx.steering.iter().position(|s| s.sae == sae.to_string() && s.feature == feature).unwrap_or(0);
                return ScreenStep::Open(Screen::Steer(super::SteerScreen { row, ..Default::default() }));
            }
            // A card is of one SAE: the tab keys do nothing here.
            Action::NextLayer | Action::PrevLayer | Action::Layer(_) => {}
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    pub fn click(&mut self, target: crate::ui::hits::Target) {
        if let crate::ui::hits::Target::ContextRow(i) = target {
            self.row = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, hits: &crate::ui::hits::HitMap) {
        panes::card::draw(f, self, area, hits);
    }
}
