//! A graph as circuit-tracer's `create_graph_files` writes it: the JSON that Neuronpedia's
//! graph viewer and circuit-tracer's local server open (its `frontend/graph_models.py`:
//! node ids, Cantor-paired feature numbers, "cross layer transcoder" for every transcoder
//! feature, error ids `0_{layer}_{pos}`, logits at layer n_layers + 1), and reading one
//! back, from saescope or from circuit-tracer. The structs' field order is the file's.

use super::prune::Pruned;
use super::Graph;
use color_eyre::eyre::{Result, WrapErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub metadata: Metadata,
    #[serde(rename = "qParams")]
    pub q_params: QParams,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub slug: String,
    pub scan: String,
    #[serde(default)]
    pub transcoder_list: Vec<String>,
    pub prompt_tokens: Vec<String>,
    pub prompt: String,
    #[serde(default)]
    pub node_threshold: Option<f64>,
    #[serde(default)]
    pub schema_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct QParams {
    #[serde(default)]
    pub pinnedIds: Vec<String>,
    #[serde(default)]
    pub supernodes: Vec<Vec<String>>,
    #[serde(default)]
    pub linkType: String,
    #[serde(default)]
    pub clickedId: String,
    #[serde(default)]
    pub sg_pos: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Node {
    pub node_id: String,
    pub feature: i64,
    pub layer: String,
    pub ctx_idx: usize,
    pub feature_type: String,
    #[serde(default)]
    pub token_prob: f64,
    #[serde(default)]
    pub is_target_logit: bool,
    #[serde(default)]
    pub run_idx: i64,
    #[serde(default)]
    pub reverse_ctx_idx: i64,
    #[serde(default)]
    pub jsNodeId: String,
    #[serde(default)]
    pub clerp: String,
    #[serde(default)]
    pub influence: Option<f64>,
    #[serde(default)]
    pub activation: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub source: String,
    pub target: String,
    pub weight: f64,
}

/// What a node is, by the `feature_type` circuit-tracer writes.
pub const FEATURE: &str = "cross layer transcoder";
pub const ERROR: &str = "mlp reconstruction error";
pub const EMBEDDING: &str = "embedding";
pub const LOGIT: &str = "logit";

/// circuit-tracer's feature number: the Cantor pairing of layer and feature.
fn cantor(layer: usize, feature: u32) -> i64 {
    let (x, y) = (layer as i64, i64::from(feature));
    (x + y) * (x + y + 1) / 2 + y
}

/// The node `i` of `graph` as circuit-tracer writes it; `influence` its cumulative score.
fn node(graph: &Graph, i: usize, influence: f32) -> Node {
    let layout = graph.layout();
    let n_pos = graph.tokens.len();
    let base = |node_id: String, feature: i64, layer: String, ctx_idx: usize, feature_type: &str, js: String| Node {
        node_id,
        feature,
        layer,
        ctx_idx,
        feature_type: feature_type.to_string(),
        token_prob: 0.0,
        is_target_logit: false,
        run_idx: 0,
        reverse_ctx_idx: 0,
        jsNodeId: js,
        clerp: String::new(),
        influence: Some(f64::from(influence)),
        activation: None,
    };
    if i < layout.features {
        let a = graph.active[graph.selected[i]];
        let mut n = base(
            format!("{}_{}_{}", a.layer, a.feature, a.pos),
            cantor(a.layer, a.feature),
            a.layer.to_string(),
            a.pos,
            FEATURE,
            format!("{}_{}-0", a.layer, a.feature),
        );
        n.activation = Some(f64::from(a.activation));
        return n;
    }
    let i = i - layout.features;
    if i < layout.errors {
        let (layer, pos) = (i / n_pos, i % n_pos);
        return base(format!("0_{layer}_{pos}"), -1, layer.to_string(), pos, ERROR, format!("{layer}_{pos}-0"));
    }
    let i = i - layout.errors;
    if i < layout.tokens {
        let token = graph.tokens[i];
        return base(format!("E_{token}_{i}"), i as i64, "E".into(), i, EMBEDDING, format!("E_{token}-{i}"));
    }
    let k = i - layout.tokens;
    let logit = &graph.logits[k];
    let layer = (graph.n_layers + 1).to_string();
    let pos = n_pos - 1;
    Node {
        token_prob: f64::from(logit.prob),
        is_target_logit: k == 0,
        clerp: format!("Output \"{}\" (p={:.3})", logit.text, logit.prob),
        influence: None,
        ..base(format!("{layer}_{}_{pos}", logit.token), i64::from(logit.token), layer, pos, LOGIT, format!("L_{}-{pos}", logit.token))
    }
}

/// The pruned graph in circuit-tracer's JSON: the kept nodes that a kept edge touches (and
/// every token and logit), the kept edges by target then source.
pub fn file(graph: &Graph, pruned: &Pruned, slug: &str, node_threshold: f64) -> File {
    let n = graph.n_nodes();
    let nodes: Vec<Option<Node>> = (0..n).map(|i| pruned.nodes[i].then(|| node(graph, i, pruned.cumulative[i]))).collect();
    let mut links = Vec::new();
    let mut connected = vec![false; n];
    for (dst, src) in pruned.edge_list() {
        if let (Some(s), Some(d)) = (&nodes[src], &nodes[dst]) {
            links.push(Link { source: s.node_id.clone(), target: d.node_id.clone(), weight: f64::from(graph.adjacency.get(dst, src)) });
            connected[src] = true;
            connected[dst] = true;
        }
    }
    let used =
        nodes.into_iter().enumerate().filter_map(|(i, nd)| nd.filter(|nd| connected[i] || nd.feature_type == EMBEDDING || nd.feature_type == LOGIT)).collect();
    File {
        metadata: Metadata {
            slug: slug.to_string(),
            scan: graph.scan.clone(),
            transcoder_list: Vec::new(),
            prompt_tokens: graph.token_texts.clone(),
            prompt: graph.token_texts.concat(),
            node_threshold: Some(node_threshold),
            schema_version: Some(1),
        },
        q_params: QParams { linkType: "both".into(), ..QParams::default() },
        nodes: used,
        links,
    }
}

/// Reads a graph file (saescope's or circuit-tracer's).
pub fn read(path: &std::path::Path) -> Result<File> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read the graph {}", path.display()))?;
    serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a graph in circuit-tracer's JSON (metadata, qParams, nodes, links)", path.display()))
}
