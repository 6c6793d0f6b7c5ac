//! Held-out text for the perplexity check: a fixed sample of the Python 3.11 documentation
//! sources from Debian's `python3.11-doc`, cut into windows of tokens.

use std::path::{Path, PathBuf};

use candle_core::{D, Tensor};
use sha2::{Digest as _, Sha256};
use strata_runtime::Llama;
use strata_runtime::tokenizer::ChatTokenizer;

use crate::error::{LearnError, Result};

/// The directory where `python3.11-doc` installs the reStructuredText sources.
pub const DEFAULT_DIR: &str = "/usr/share/doc/python3.11/html/_sources";

/// Environment variable naming another directory of `.rst.txt` files.
pub const DIR_VARIABLE: &str = "STRATA_HELDOUT_DIR";

/// Tokens per window; each window is scored from an empty cache.
pub const WINDOW_TOKENS: usize = 512;

/// Windows in the sample: 40 × 512 = 20,480 tokens.
pub const WINDOWS: usize = 40;

/// Folders read in this order, each in sorted file order, until the sample is full.
const FOLDERS: [&str; 3] = ["tutorial", "howto", "library"];

/// The fixed sample: token windows and a digest that identifies them.
#[derive(Clone, Debug)]
pub struct HeldOut {
    /// `WINDOWS` windows of `WINDOW_TOKENS` token ids.
    pub windows: Vec<Vec<u32>>,
    /// sha256 of the token ids, so figures from different samples are never compared.
    pub digest: String,
    /// The directory the text came from.
    pub dir: PathBuf,
}

impl HeldOut {
    /// Reads the sample from `dir`, or from `$STRATA_HELDOUT_DIR`, or from [`DEFAULT_DIR`].
    pub fn load(dir: Option<&Path>, tokenizer: &ChatTokenizer) -> Result<HeldOut> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::var_os(DIR_VARIABLE)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
        };
        if !dir.is_dir() {
            let reason = format!(
                "`{}` is not a directory; install Debian's python3.11-doc (`apt-get install \
                 python3.11-doc`, which scripts/test.sh does) or set {DIR_VARIABLE}",
                dir.display()
            );
            return Err(LearnError::HeldOut { reason });
        }

        let needed = WINDOWS * WINDOW_TOKENS;
        let mut tokens = Vec::with_capacity(needed + WINDOW_TOKENS);
        'folders: for folder in FOLDERS {
            for file in sorted_sources(&dir.join(folder))? {
                let text = std::fs::read_to_string(&file).map_err(|source| LearnError::Read {
                    path: file.clone(),
                    source,
                })?;
                tokens.extend(tokenizer.encode_text(&text)?);
                if tokens.len() >= needed {
                    break 'folders;
                }
            }
        }
        if tokens.len() < needed {
            let reason = format!(
                "`{}` holds {} tokens of .rst.txt text in {FOLDERS:?}, fewer than the {needed} needed",
                dir.display(),
                tokens.len()
            );
            return Err(LearnError::HeldOut { reason });
        }
        tokens.truncate(needed);

        let mut hasher = Sha256::new();
        for token in &tokens {
            hasher.update(token.to_le_bytes());
        }
        let digest = format!("sha256:{:x}", hasher.finalize());
        let windows = tokens.chunks(WINDOW_TOKENS).map(<[u32]>::to_vec).collect();
        Ok(HeldOut {
            windows,
            digest,
            dir,
        })
    }
}

fn sorted_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| LearnError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".rst.txt"))
        .collect();
    files.sort();
    Ok(files)
}

/// Perplexity on a held-out sample for models that differ only from `first_layer` on.
///
/// The hidden states entering `first_layer` are computed once, so each model costs only the
/// layers from there and the output projection.
#[derive(Debug)]
pub struct PerplexityProbe {
    first_layer: usize,
    hidden: Vec<Tensor>,
    windows: Vec<Vec<u32>>,
    /// The sample's digest.
    pub digest: String,
}

impl PerplexityProbe {
    /// Runs `model`'s layers below `first_layer` over every window.
    pub fn new(model: &Llama, heldout: &HeldOut, first_layer: usize) -> Result<PerplexityProbe> {
        let hidden = heldout
            .windows
            .iter()
            .map(|window| model.hidden_before(window, first_layer))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(PerplexityProbe {
            first_layer,
            hidden,
            windows: heldout.windows.clone(),
            digest: heldout.digest.clone(),
        })
    }

    /// Returns the first layer the probe runs per model.
    pub fn first_layer(&self) -> usize {
        self.first_layer
    }

    /// Computes `exp` of the mean negative log-likelihood of every token after the first of
    /// each window.
    pub fn perplexity(&self, model: &Llama) -> Result<f64> {
        let losses = (0..self.windows.len())
            .map(|index| self.window_loss(model, index))
            .collect::<Result<Vec<_>>>()?;
        Ok(perplexity_of(&losses))
    }

    /// Returns the number of windows.
    pub fn windows(&self) -> usize {
        self.windows.len()
    }

    /// Returns the summed negative log-likelihood of window `index`'s tokens after its first,
    /// and how many tokens that is.
    pub fn window_loss(&self, model: &Llama, index: usize) -> Result<WindowLoss> {
        let (hidden, window) = (&self.hidden[index], &self.windows[index]);
        let logits = model.logits_from(hidden, self.first_layer)?;
        let predicted = window.len() - 1;
        let log_probs = candle_nn::ops::log_softmax(&logits.narrow(0, 0, predicted)?, D::Minus1)?;
        let targets = Tensor::new(&window[1..], logits.device())?.unsqueeze(1)?;
        let picked = log_probs.gather(&targets, 1)?;
        Ok(WindowLoss {
            total: -f64::from(picked.sum_all()?.to_scalar::<f32>()?),
            tokens: predicted,
        })
    }
}

/// The loss of one held-out window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowLoss {
    /// Summed negative log-likelihood.
    pub total: f64,
    /// Tokens predicted.
    pub tokens: usize,
}

/// Returns `exp` of the mean negative log-likelihood over every window's tokens.
pub fn perplexity_of(losses: &[WindowLoss]) -> f64 {
    let total: f64 = losses.iter().map(|loss| loss.total).sum();
    let tokens: usize = losses.iter().map(|loss| loss.tokens).sum();
    (total / tokens as f64).exp()
}
