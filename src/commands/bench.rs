//! `saescope bench`: the figures BENCHMARKS.md and closing notes quote, measured on the
//! same code paths the report uses.

use color_eyre::eyre::Result;
use saescope::analysis::{analyze, Params};
use saescope::corpus::samples::Samples;
use saescope::pipeline::{gib, pack, plan, Engine, Resolved, Run};
use saescope::runtime::progress::ProgressSink;
use std::time::Instant;
use tch::Device;

/// `saescope bench`: the report's compute on the samples, or `--corpus`'s indexing.
pub fn bench(c: &crate::commands::cli::Common, repeat: usize) -> Result<()> {
    let (run, params) = super::setup(c)?;
    if let Some(corpus) = c.corpus()? {
        let run = run.with_opts(saescope::pipeline::RunOptions { batch_tokens: c.window_batch_tokens(), ..run.opts.clone() });
        return index(&run, &corpus, c.max_tokens);
    }
    self::run(&run, &super::samples(c)?, params, repeat)
}

/// Peak resident set size of this process so far, in MiB (Linux; None elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let t = Instant::now();
    let out = f()?;
    Ok((t.elapsed().as_secs_f64(), out))
}

/// The loaded SAEs as the figures name them, the blocks the forward runs, the summed
/// width (encode FLOPs are 2 d per feature) and the widest SAE (the plain matmul's shape).
struct LoadedShape {
    names: String,
    blocks: usize,
    total_width: usize,
    widest: usize,
}

impl LoadedShape {
    fn of(engine: &Engine) -> Self {
        let keys = engine.keys();
        Self {
            names: keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            blocks: keys.iter().map(|k| k.hook.blocks_needed()).max().unwrap_or(0),
            total_width: keys.iter().map(|k| k.width).sum(),
            widest: keys.iter().map(|k| k.width).max().unwrap_or(0),
        }
    }
}

pub fn run(run: &Run, samples: &Samples, params: Params, repeat: usize) -> Result<()> {
    let (device, opts) = (run.device, &run.opts);
    let repeat = repeat.max(1);
    let quiet = ProgressSink::none();
    let need = Resolved::new(&run.model, &run.saes, &quiet)?.memory_needed(opts, false)?;
    let mut loads = Vec::new();
    let mut engine = None;
    for _ in 0..repeat {
        let (s, e) = time(|| Engine::load(run, &quiet))?;
        loads.push(s);
        engine = Some(e);
    }
    let Some(engine) = engine else { return Ok(()) };
    let _guard = tch::no_grad_guard();
    let tokens = engine.tokenize(samples, opts, &quiet)?;
    let batches: Vec<_> =
        plan(&tokens, opts.batch_tokens).iter().map(|b| pack(b.iter().map(|&i| tokens[i].as_slice()), opts.include_bos, engine.tokenizer.bos)).collect();
    let n_tok: usize = batches.iter().map(|p| p.n_real).sum();

    let mut fwd = Vec::new();
    let mut enc = Vec::new();
    for _ in 0..repeat {
        let (s, resid) = time(|| batches.iter().map(|p| engine.inputs(p)).collect::<Result<Vec<_>>>())?;
        fwd.push(s);
        let (s, _) = time(|| batches.iter().zip(&resid).map(|(p, r)| engine.means(p, r)).collect::<Result<Vec<_>>>())?;
        enc.push(s);
    }
    let mut e2e = Vec::new();
    for _ in 0..repeat {
        let (s, _) = time(|| {
            // What `report --no-cache` runs: resolve, load, fold, analyse.
            let req = saescope::pipeline::compute::SamplesRequest { run, samples, cache: None, partial: None };
            let done = saescope::pipeline::compute::activations(&req, &quiet)?;
            Ok(analyze(&done.set, params))
        })?;
        e2e.push(s);
    }
    let (fwd, enc) = (median(fwd), median(enc));
    let n_saes = engine.saes.len();
    let shape = LoadedShape::of(&engine);
    // FLOPs the compute phase does on its padded batches: per token and block the family's
    // (a block a hook sits inside counts whole); per token and SAE 2 d d_sae.
    let d = engine.model.d_model() as f64;
    let (mut fwd_flops, mut enc_flops) = (0f64, 0f64);
    for p in &batches {
        let (b, t) = (p.ids.size()[0] as f64, p.ids.size()[1] as f64);
        fwd_flops += b * t * shape.blocks as f64 * engine.model.block_flops(p.ids.size()[1] as usize);
        enc_flops += b * t * 2.0 * d * shape.total_width as f64;
    }
    let achieved = (fwd_flops + enc_flops) / (fwd + enc) / 1e9;
    let plain = plain_matmul_gflops(engine.model.d_model() as i64, shape.widest as i64, device, opts.dtype.kind());
    println!("device                 {device:?}, {} libtorch threads, {:?}", tch::get_num_threads(), opts.dtype);
    println!("texts / tokens         {} / {n_tok} (with BOS; padded batches: {})", tokens.len(), batches.len());
    println!("SAEs                   {}", shape.names);
    println!("weight load            {:.3} s (median of {repeat})", median(loads));
    println!("model forward          {:.0} tokens/s ({fwd:.3} s through {} blocks)", n_tok as f64 / fwd, shape.blocks);
    println!("SAE encode             {:.0} tokens/s per SAE ({enc:.3} s for {n_saes} SAEs)", (n_tok * n_saes) as f64 / enc);
    println!("end to end             {:.3} s (load + run + analysis, median of {repeat})", median(e2e));
    println!(
        "compute GFLOP/s        {achieved:.1} ({:.1} GFLOP forward + {:.1} GFLOP encode in {:.3} s) = {:.0}% of a plain matmul's {plain:.1}",
        fwd_flops / 1e9,
        enc_flops / 1e9,
        fwd + enc,
        100.0 * achieved / plain
    );
    println!("weights needed         {} (RSS target: that + 400 MB = {})", gib(need.weights), gib(need.weights + (400 << 20)));
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS               {rss:.0} MiB (this process loads the weights {} times over)", 2 * repeat + 1);
    }
    Ok(())
}

/// GFLOP/s of one large matmul in the run's dtype, [2048, d] x [d, d_sae], the practical
/// ceiling of the SAE encode on this machine (median of 5 after a warm-up).
pub fn plain_matmul_gflops(d: i64, d_sae: i64, device: Device, kind: tch::Kind) -> f64 {
    let _guard = tch::no_grad_guard();
    let a = tch::Tensor::randn([2048, d], (kind, device));
    let w = tch::Tensor::randn([d, d_sae], (kind, device));
    let _ = a.mm(&w);
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = a.mm(&w);
            let _ = out.sum(tch::Kind::Float).double_value(&[]);
            t.elapsed().as_secs_f64()
        })
        .collect();
    2.0 * 2048.0 * d as f64 * d_sae as f64 / median(times) / 1e9
}

/// `saescope bench --corpus PATH`: the index's throughput on the same code path `index`
/// runs (no store), with FLOP rates against plain matmuls on the same threads.
pub fn index(run: &Run, corpus: &saescope::corpus::Corpus, max_tokens: Option<u64>) -> Result<()> {
    let (device, opts) = (run.device, &run.opts);
    let quiet = ProgressSink::none();
    let resolved = Resolved::new(&run.model, &run.saes, &quiet)?;
    let context =
        resolved.saes.first().and_then(|f| saescope::dashboard::build::context_size(&f.files.cfg)).unwrap_or(saescope::dashboard::build::DEFAULT_CONTEXT);
    let (load, engine) = time(|| resolved.load(device, false, opts, &quiet))?;
    let encode = saescope::dashboard::build::Encode::from_env();
    let job = saescope::dashboard::build::Job { engine: &engine, corpus, context, max_tokens, batch_tokens: opts.batch_tokens, encode, slice: None };
    let (wall, (index, t)) = time(|| job.run(None, &mut |_| Ok(()), &quiet))?;
    let shape = LoadedShape::of(&engine);
    let d = engine.model.d_model() as f64;
    let n_saes = engine.saes.len() as f64;
    let padded = t.padded_tokens as f64;
    let ctx = context as f64;
    let fwd_flops = padded * shape.blocks as f64 * (24.0 * d * d + 4.0 * ctx * d);
    let enc_flops = padded * 2.0 * d * shape.total_width as f64;
    let compute = t.forward + t.encode + t.stats;
    let f32_plain = plain_matmul_gflops(d as i64, shape.widest as i64, device, tch::Kind::Float);
    let bf16_plain = plain_matmul_gflops(d as i64, shape.widest as i64, device, tch::Kind::BFloat16);
    let tok = index.tokens as f64;
    println!(
        "device                 {device:?}, {} libtorch threads, {:?}, encode {}",
        tch::get_num_threads(),
        opts.dtype,
        match encode {
            saescope::dashboard::build::Encode::Plain => "plain f32",
            saescope::dashboard::build::Encode::Unscreened => "f32 dots, unscreened",
            saescope::dashboard::build::Encode::Screened => "bf16 screen + f32 recompute",
        }
    );
    println!(
        "corpus                 {} tokens in {} windows of {context} ({} padded tokens in {} batches)",
        index.tokens, index.windows, t.padded_tokens, t.batches
    );
    println!("SAEs                   {}", shape.names);
    println!("weight load            {load:.3} s");
    println!("model forward          {:.0} tokens/s ({:.2} s; {:.1} GFLOP/s)", tok / t.forward, t.forward, fwd_flops / t.forward / 1e9);
    println!(
        "SAE encode             {:.0} tokens/s per SAE ({:.2} s for {n_saes} SAEs; {:.1} f32-equivalent GFLOP/s)",
        tok * n_saes / t.encode,
        t.encode,
        enc_flops / t.encode / 1e9
    );
    println!("statistics             {:.2} s", t.stats);
    println!("indexing               {:.0} tokens/s ({compute:.2} s compute, {wall:.2} s with counting and collecting)", tok / compute);
    println!(
        "compute GFLOP/s        {:.1} ({:.0} GFLOP forward + {:.0} GFLOP encode, f32-equivalent) = {:.0}% of a plain f32 matmul's {f32_plain:.1} (bf16: {bf16_plain:.1})",
        (fwd_flops + enc_flops) / compute / 1e9,
        fwd_flops / 1e9,
        enc_flops / 1e9,
        100.0 * (fwd_flops + enc_flops) / compute / 1e9 / f32_plain
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS               {rss:.0} MiB");
    }
    Ok(())
}
