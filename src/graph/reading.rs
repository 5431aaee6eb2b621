//! A graph file as a reader walks it in the explorer's graph view: its nodes placed on a
//! grid of lanes (logits on top, then the layers from the last down, the token embeddings at
//! the bottom) by token position, each node's edges strongest first, the step along the
//! strongest edge, and the edges between groups of nodes a reader gathers by hand
//! (circuit-tracer's supernodes). Pure data over `json::File`, so a graph computed here and
//! one read from circuit-tracer or Neuronpedia read alike.
//!
//! The node threshold works as Neuronpedia's viewer's pruning slider does (circuit-tracer's
//! `frontend/assets/attribution_graph/util-cg.js`, `formatData`): a node stays when its
//! cumulative influence is at most the threshold; tokens and logits always stay.

use super::json::{self, File};
use color_eyre::eyre::{bail, Result};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Feature,
    Error,
    Token,
    Logit,
}

/// Where a node sits: its lane (0 the logits, then layer n-1 down to 0, then the tokens)
/// and its token position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub lane: usize,
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub file: File,
    pub kinds: Vec<Kind>,
    pub places: Vec<Place>,
    /// Per node: the transcoder layer and feature (features), the layer (errors).
    pub layer: Vec<Option<usize>>,
    pub feature: Vec<Option<u32>>,
    pub n_layers: usize,
    /// Per node, its edges as (other node, weight), strongest first.
    ins: Vec<Vec<(usize, f64)>>,
    outs: Vec<Vec<(usize, f64)>>,
    /// Per lane and position (`lane * n_pos + pos`), its nodes, the most influential first:
    /// drawing a long prompt's grid asks for every cell of every frame.
    cells: Vec<Vec<usize>>,
}

/// A direction to move the selection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    Left,
    Right,
    /// The lane above: toward the logits.
    Up,
    Down,
}

impl Reading {
    pub fn new(file: File) -> Result<Self> {
        let n = file.nodes.len();
        let mut kinds = Vec::with_capacity(n);
        let (mut layer, mut feature) = (vec![None; n], vec![None; n]);
        for (i, node) in file.nodes.iter().enumerate() {
            kinds.push(match node.feature_type.as_str() {
                json::ERROR => Kind::Error,
                json::EMBEDDING => Kind::Token,
                json::LOGIT => Kind::Logit,
                // circuit-tracer writes "cross layer transcoder" for per-layer transcoders too.
                _ => Kind::Feature,
            });
            if matches!(kinds[i], Kind::Feature | Kind::Error) {
                layer[i] = node.layer.parse::<usize>().ok();
                if layer[i].is_none() {
                    bail!("graph node {} has layer {:?}, not a number", node.node_id, node.layer);
                }
            }
            if kinds[i] == Kind::Feature {
                // Its id is LAYER_FEATURE_POSITION; `feature` holds the Cantor pairing.
                feature[i] = node.node_id.split('_').nth(1).and_then(|f| f.parse().ok());
            }
        }
        let n_layers = layer.iter().flatten().max().map_or_else(
            || {
                file.nodes
                    .iter()
                    .filter(|d| d.feature_type == json::LOGIT)
                    .filter_map(|d| d.layer.parse::<usize>().ok())
                    .max()
                    .map_or(0, |l| l.saturating_sub(1))
            },
            |&l| l + 1,
        );
        let places = (0..n)
            .map(|i| Place {
                lane: match kinds[i] {
                    Kind::Logit => 0,
                    Kind::Token => n_layers + 1,
                    _ => n_layers - layer[i].unwrap_or(0),
                },
                pos: file.nodes[i].ctx_idx,
            })
            .collect();
        let index: HashMap<&str, usize> = file.nodes.iter().enumerate().map(|(i, d)| (d.node_id.as_str(), i)).collect();
        let (mut ins, mut outs) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for l in &file.links {
            let (Some(&s), Some(&t)) = (index.get(l.source.as_str()), index.get(l.target.as_str())) else {
                bail!("graph link {} -> {} names a node the graph does not have", l.source, l.target);
            };
            outs[s].push((t, l.weight));
            ins[t].push((s, l.weight));
        }
        for e in ins.iter_mut().chain(outs.iter_mut()) {
            e.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        }
        let mut r = Self { file, kinds, places, layer, feature, n_layers, ins, outs, cells: Vec::new() };
        let n_pos = r.n_pos();
        let mut cells = vec![Vec::new(); r.lanes() * n_pos];
        for i in 0..n {
            cells[r.places[i].lane * n_pos + r.places[i].pos].push(i);
        }
        for c in &mut cells {
            c.sort_by(|&a, &b| r.rank(a).total_cmp(&r.rank(b)).then(a.cmp(&b)));
        }
        r.cells = cells;
        Ok(r)
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Logits, a lane per layer, tokens.
    pub fn lanes(&self) -> usize {
        self.n_layers + 2
    }

    pub fn n_pos(&self) -> usize {
        self.file.metadata.prompt_tokens.len().max(self.places.iter().map(|p| p.pos + 1).max().unwrap_or(0))
    }

    /// A lane's name: `logits`, `L3`, `emb`.
    pub fn lane_name(&self, lane: usize) -> String {
        match lane {
            0 => "logits".into(),
            l if l > self.n_layers => "emb".into(),
            l => format!("L{}", self.n_layers - l),
        }
    }

    /// The node's cumulative influence (lower: more influence), tokens and logits none.
    pub fn influence(&self, i: usize) -> Option<f64> {
        self.file.nodes[i].influence
    }

    pub fn shown(&self, i: usize, threshold: f64) -> bool {
        matches!(self.kinds[i], Kind::Token | Kind::Logit) || self.influence(i).is_none_or(|x| x <= threshold)
    }

    /// The nodes shown at one lane and position, the most influential (or probable) first.
    pub fn cell(&self, lane: usize, pos: usize, threshold: f64) -> Vec<usize> {
        let n_pos = self.n_pos();
        if lane >= self.lanes() || pos >= n_pos {
            return Vec::new();
        }
        self.cells[lane * n_pos + pos].iter().copied().filter(|&i| self.shown(i, threshold)).collect()
    }

    /// Lower first: cumulative influence, or minus the probability of a logit.
    fn rank(&self, i: usize) -> f64 {
        match self.kinds[i] {
            Kind::Logit => -self.file.nodes[i].token_prob,
            _ => self.influence(i).unwrap_or(0.0),
        }
    }

    /// Edges into `i` from shown nodes, strongest first.
    pub fn incoming(&self, i: usize, threshold: f64) -> Vec<(usize, f64)> {
        self.ins[i].iter().copied().filter(|&(s, _)| self.shown(s, threshold)).collect()
    }

    /// Edges out of `i` into shown nodes, strongest first.
    pub fn outgoing(&self, i: usize, threshold: f64) -> Vec<(usize, f64)> {
        self.outs[i].iter().copied().filter(|&(t, _)| self.shown(t, threshold)).collect()
    }

    /// Every edge between shown nodes, as in the file.
    pub fn edges(&self, threshold: f64) -> Vec<(usize, usize, f64)> {
        (0..self.len()).filter(|&s| self.shown(s, threshold)).flat_map(|s| self.outgoing(s, threshold).into_iter().map(move |(t, w)| (s, t, w))).collect()
    }

    /// The first node: the target logit, else the first logit, else the first node.
    pub fn start(&self) -> usize {
        self.file.nodes.iter().position(|d| d.is_target_logit).or_else(|| self.kinds.iter().position(|&k| k == Kind::Logit)).unwrap_or(0)
    }

    /// The shown node next to `i` toward `to`: along its lane by position, or in the next
    /// non-empty lane above or below, the one nearest its position.
    pub fn neighbour(&self, i: usize, to: Toward, threshold: f64) -> Option<usize> {
        let here = self.places[i];
        match to {
            Toward::Left | Toward::Right => {
                let lane: Vec<usize> = (0..self.n_pos()).flat_map(|p| self.cell(here.lane, p, threshold)).collect();
                let at = lane.iter().position(|&j| j == i)?;
                match to {
                    Toward::Left => at.checked_sub(1).map(|k| lane[k]),
                    _ => lane.get(at + 1).copied(),
                }
            }
            Toward::Up | Toward::Down => {
                let lanes: Vec<usize> = if to == Toward::Up { (0..here.lane).rev().collect() } else { (here.lane + 1..self.lanes()).collect() };
                lanes.into_iter().find_map(|lane| {
                    (0..self.n_pos())
                        .filter_map(|p| self.cell(lane, p, threshold).first().map(|&j| (p.abs_diff(here.pos), j)))
                        .min_by_key(|&(d, j)| (d, self.places[j].pos))
                        .map(|(_, j)| j)
                })
            }
        }
    }

    /// A short name: `L3 #45 @5`, `err L3 @5`, `emb @5`, `logit " the"`.
    pub fn name(&self, i: usize) -> String {
        let pos = self.places[i].pos;
        match self.kinds[i] {
            Kind::Feature => format!("L{} #{} @{pos}", self.layer[i].unwrap_or(0), self.feature[i].unwrap_or(0)),
            Kind::Error => format!("err L{} @{pos}", self.layer[i].unwrap_or(0)),
            Kind::Token => format!("emb @{pos}"),
            Kind::Logit => match self.file.nodes[i].clerp.split('"').nth(1) {
                Some(t) => format!("logit {:?}", t),
                None => format!("logit {}", self.file.nodes[i].node_id),
            },
        }
    }

    /// The prompt token at a position, as the file writes it.
    pub fn token(&self, pos: usize) -> &str {
        self.file.metadata.prompt_tokens.get(pos).map_or("", String::as_str)
    }

    /// The summed weight of the edges between each ordered pair of groups (indices into
    /// `groups`), strongest first: how supernodes connect. A node in two groups counts in both.
    pub fn group_edges(&self, groups: &[Vec<usize>], threshold: f64) -> Vec<(usize, usize, f64)> {
        let mut sums: HashMap<(usize, usize), f64> = HashMap::new();
        for (a, from) in groups.iter().enumerate() {
            for (b, to) in groups.iter().enumerate() {
                if a == b {
                    continue;
                }
                for &s in from {
                    for (t, w) in self.outgoing(s, threshold) {
                        if to.contains(&t) && self.shown(s, threshold) {
                            *sums.entry((a, b)).or_default() += w;
                        }
                    }
                }
            }
        }
        let mut v: Vec<(usize, usize, f64)> = sums.into_iter().map(|((a, b), w)| (a, b, w)).collect();
        v.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()).then((x.0, x.1).cmp(&(y.0, y.1))));
        v
    }

    /// The strongest edge's other end toward the logits (`out`) or toward the tokens.
    pub fn strongest(&self, i: usize, out: bool, threshold: f64) -> Option<usize> {
        let edges = if out { self.outgoing(i, threshold) } else { self.incoming(i, threshold) };
        edges.first().map(|&(j, _)| j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::json::{Link, Metadata, Node, QParams};

    fn node(id: &str, layer: &str, pos: usize, kind: &str, influence: Option<f64>) -> Node {
        Node {
            node_id: id.into(),
            feature: 0,
            layer: layer.into(),
            ctx_idx: pos,
            feature_type: kind.into(),
            token_prob: if kind == json::LOGIT { 0.6 } else { 0.0 },
            is_target_logit: kind == json::LOGIT,
            run_idx: 0,
            reverse_ctx_idx: 0,
            jsNodeId: String::new(),
            clerp: if kind == json::LOGIT { "Output \" mat\" (p=0.600)".into() } else { String::new() },
            influence,
            activation: None,
        }
    }

    /// Two layers, three positions: tokens -> L0#7@1 -> L1#3@2 -> logit, an error beside.
    fn tiny() -> Reading {
        let nodes = vec![
            node("0_7_1", "0", 1, json::FEATURE, Some(0.3)),
            node("1_3_2", "1", 2, json::FEATURE, Some(0.1)),
            node("1_9_2", "1", 2, json::FEATURE, Some(0.9)),
            node("0_1_2", "1", 2, json::ERROR, Some(0.5)),
            node("E_5_0", "E", 0, json::EMBEDDING, None),
            node("E_6_1", "E", 1, json::EMBEDDING, None),
            node("E_8_2", "E", 2, json::EMBEDDING, None),
            node("3_11_2", "3", 2, json::LOGIT, None),
        ];
        let link = |s: &str, t: &str, w: f64| Link { source: s.into(), target: t.into(), weight: w };
        let links = vec![
            link("E_6_1", "0_7_1", 2.0),
            link("0_7_1", "1_3_2", 1.5),
            link("E_8_2", "1_3_2", -0.5),
            link("1_3_2", "3_11_2", 3.0),
            link("0_1_2", "3_11_2", 0.25),
            link("1_9_2", "3_11_2", 0.1),
        ];
        let metadata = Metadata {
            slug: "t".into(),
            scan: "s".into(),
            transcoder_list: vec![],
            prompt_tokens: vec!["<bos>".into(), "The".into(), " cat".into()],
            prompt: "The cat".into(),
            node_threshold: Some(0.8),
            schema_version: Some(1),
        };
        Reading::new(File { metadata, q_params: QParams::default(), nodes, links }).expect("reading")
    }

    #[test]
    fn places_lanes_and_walks_the_strongest_path() {
        let r = tiny();
        assert_eq!((r.n_layers, r.lanes(), r.n_pos()), (2, 4, 3));
        assert_eq!([r.lane_name(0), r.lane_name(1), r.lane_name(2), r.lane_name(3)], ["logits", "L1", "L0", "emb"]);
        let start = r.start();
        assert_eq!(r.name(start), "logit \" mat\"");
        // Down from the logit: the nearest node of layer 1 at position 2, the most influential.
        let l1 = r.neighbour(start, Toward::Down, 1.0).expect("L1");
        assert_eq!(r.name(l1), "L1 #3 @2");
        assert_eq!(r.cell(1, 2, 1.0).iter().map(|&i| r.name(i)).collect::<Vec<_>>(), ["L1 #3 @2", "err L1 @2", "L1 #9 @2"]);
        // Toward the tokens along the strongest edges.
        let l0 = r.strongest(l1, false, 1.0).expect("into L1");
        assert_eq!(r.name(l0), "L0 #7 @1");
        assert_eq!(r.strongest(l0, false, 1.0).map(|i| r.name(i)), Some("emb @1".into()));
        assert_eq!(r.strongest(l0, true, 1.0), Some(l1));
        assert_eq!(r.incoming(start, 1.0).iter().map(|&(_, w)| w).collect::<Vec<_>>(), [3.0, 0.25, 0.1]);
        assert_eq!(r.neighbour(l1, Toward::Right, 1.0).map(|i| r.name(i)), Some("err L1 @2".into()));
        assert_eq!(r.neighbour(l1, Toward::Left, 1.0), None);
    }

    #[test]
    fn the_threshold_hides_nodes_and_their_edges_but_never_tokens_or_logits() {
        let r = tiny();
        let start = r.start();
        assert_eq!(r.incoming(start, 0.4).len(), 1, "only L1#3 (0.1) stays under 0.4");
        assert_eq!(r.edges(1.0).len(), 6);
        assert_eq!(r.edges(0.2).len(), 2, "token -> L1#3 -> logit; L0#7 (0.3) and its edges are hidden");
        assert!(r.shown(r.len() - 2, 0.0) && r.shown(r.len() - 1, 0.0));
    }

    #[test]
    fn groups_sum_the_edges_between_them() {
        let r = tiny();
        let groups = vec![vec![0, 3], vec![1, 2], vec![7]];
        let e = r.group_edges(&groups, 1.0);
        assert_eq!(e, vec![(1, 2, 3.1), (0, 1, 1.5), (0, 2, 0.25)]);
    }

    #[test]
    fn a_link_to_a_missing_node_is_an_error() {
        let mut f = tiny().file;
        f.links.push(Link { source: "9_9_9".into(), target: "1_3_2".into(), weight: 1.0 });
        let e = Reading::new(f).expect_err("refused");
        assert!(e.to_string().contains("9_9_9"), "{e}");
    }
}
