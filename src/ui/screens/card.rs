//! A feature's card, opened from a table, the token view or a search hit: it scrolls, opens
//! the Neuronpedia page, and leads to the feature's token view.

use super::{Screen, Step};
use crate::card::Card;
use crate::ui::action::{Action, Effect, Request};
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
}

/// Opens the card of `feature` at `layer` from the results, asking for its weight-derived
/// parts; stays put (with a message) when it cannot be made yet.
pub fn open(ctx: &mut Context, layer: usize, feature: u32, out: &mut Vec<Effect>) -> Step {
    let Some(r) = &ctx.results else {
        ctx.message = Some("results are still computing".into());
        return Step::Done;
    };
    match Card::from_set(&r.set, &ctx.labels, layer, feature) {
        Ok(card) => {
            out.push(Effect::Worker(Request::Card(Box::new(card.clone()))));
            Step::Open(Screen::Card(Box::new(CardScreen { card, scroll: 0, failed: None })))
        }
        Err(e) => {
            ctx.message = Some(e.to_string());
            Step::Done
        }
    }
}

impl CardScreen {
    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> Step {
        if super::scroll(&mut self.scroll, action) {
            return Step::Done;
        }
        match action {
            Action::OpenUrl => match &self.card.neuronpedia_url {
                Some(url) => out.push(Effect::OpenUrl(url.clone())),
                None => ctx.message = Some("no Neuronpedia page is known for this SAE (its cfg.json names no neuronpedia_id)".into()),
            },
            Action::Tokens => {
                if let Some(i) = ctx.layers.iter().position(|&l| l == self.card.layer) {
                    ctx.layer_idx = i;
                }
                return Step::Open(Screen::Tokens(super::TokensScreen::open(self.card.feature, ctx, out)));
            }
            Action::Steer => {
                let (layer, feature) = (self.card.layer, self.card.feature);
                if !ctx.steering.iter().any(|s| (s.layer, s.feature) == (layer, feature)) {
                    ctx.steering.push(crate::steer::Steer { layer, feature, strength: super::steer::DEFAULT_STRENGTH });
                }
                let row = ctx.steering.iter().position(|s| (s.layer, s.feature) == (layer, feature)).unwrap_or(0);
                return Step::Open(Screen::Steer(super::SteerScreen { row, ..Default::default() }));
            }
            // A card is of one layer: the layer keys do nothing here.
            Action::NextLayer | Action::PrevLayer | Action::Layer(_) => {}
            _ => return Step::Pass,
        }
        Step::Done
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        panes::card::draw(f, self, area);
    }
}
