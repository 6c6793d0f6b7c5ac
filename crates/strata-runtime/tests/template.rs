//! Chat template rendering: Hugging Face's globals and whitespace rules, errors a template raises,
//! and SmolLM2's own template (a committed copy, and the GGUF file's when `STRATA_TEST_GGUF` is
//! set).

use std::fs::File;

use candle_core::quantized::gguf_file::Content;
use strata_runtime::template::{ChatTemplate, Message, TemplateError};

const SMOLLM2_TEMPLATE: &str = include_str!("fixtures/smollm2_chat_template.jinja");

fn render(source: &str, messages: &[Message]) -> Result<String, TemplateError> {
    ChatTemplate::new(source, Some("<s>"), Some("</s>"))
        .expect("compile")
        .render(messages, true)
}

fn system_and_user() -> Vec<Message> {
    vec![
        Message::new("system", "You are terse."),
        Message::new("user", "Hi there"),
    ]
}

#[test]
fn raise_exception_returns_template_text() {
    let source = "{% for m in messages %}{% if m.role == 'system' %}\
        {{ raise_exception('Conversation roles must alternate') }}{% endif %}{% endfor %}";
    let error = render(source, &system_and_user()).expect_err("raised");
    match error {
        TemplateError::Raised(message) => assert_eq!(message, "Conversation roles must alternate"),
        other => panic!("expected a raised error, got {other:?}"),
    }
}

#[test]
fn raised_error_displays_only_template_text() {
    let source = "{{ raise_exception('Only user and assistant roles are supported!') }}";
    let error = render(source, &[]).expect_err("raised");
    assert_eq!(
        error.to_string(),
        "Only user and assistant roles are supported!"
    );
}

#[test]
fn strftime_now_renders_today() {
    let before = chrono::Local::now().format("%d %b %Y %H:%M").to_string();
    let rendered = render("{{ strftime_now('%d %b %Y %H:%M') }}", &[]).unwrap();
    let after = chrono::Local::now().format("%d %b %Y %H:%M").to_string();
    assert!(
        rendered == before || rendered == after,
        "{rendered} not in [{before}, {after}]"
    );
}

#[test]
fn strftime_now_rejects_invalid_format() {
    let error = render("{{ strftime_now('%Q') }}", &[]).expect_err("invalid format");
    assert!(matches!(error, TemplateError::Render { .. }), "{error:?}");
    assert!(error.to_string().contains("%Q"), "{error}");
}

#[test]
fn special_token_globals_render() {
    assert_eq!(
        render("{{ bos_token }}|{{ eos_token }}", &[]).unwrap(),
        "<s>|</s>"
    );
}

#[test]
fn unset_special_tokens_render_empty() {
    let template = ChatTemplate::new("[{{ bos_token }}]", None, None).unwrap();
    assert_eq!(template.render(&[], false).unwrap(), "[]");
}

#[test]
fn add_generation_prompt_is_a_global() {
    let template = ChatTemplate::new("{{ add_generation_prompt }}", None, None).unwrap();
    assert_eq!(template.render(&[], true).unwrap(), "True");
    assert_eq!(template.render(&[], false).unwrap(), "False");
}

#[test]
fn block_lines_leave_no_blank_lines() {
    let source = "{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}\n    \
                  {% endif %}\n{% endfor %}\n";
    assert_eq!(render(source, &system_and_user()).unwrap(), "Hi there\n");
}

#[test]
fn trailing_newline_is_kept() {
    assert_eq!(render("end\n", &[]).unwrap(), "end\n");
}

#[test]
fn python_string_methods_work() {
    let messages = [Message::new("user", "  padded  ")];
    let source = "{{ messages[0].content.strip() }}|{{ messages[0]['role'].upper() }}";
    assert_eq!(render(source, &messages).unwrap(), "padded|USER");
}

#[test]
fn syntax_error_is_reported() {
    let error = ChatTemplate::new("{% for m in messages %}", None, None).expect_err("syntax error");
    assert!(matches!(error, TemplateError::Syntax { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("invalid chat template: "),
        "{error}"
    );
}

#[test]
fn unknown_filter_is_a_render_error() {
    let error = render("{{ messages | no_such_filter }}", &[]).expect_err("unknown filter");
    assert!(matches!(error, TemplateError::Render { .. }), "{error:?}");
}

#[test]
fn chatml_renders_turns() {
    let rendered = ChatTemplate::chatml()
        .render(&system_and_user(), true)
        .unwrap();
    let expected = "<|im_start|>system\nYou are terse.<|im_end|>\n\
                    <|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(rendered, expected);
}

#[test]
fn smollm2_template_renders_system_and_user() {
    let rendered = render(SMOLLM2_TEMPLATE, &system_and_user()).unwrap();
    let expected = "<|im_start|>system\nYou are terse.<|im_end|>\n\
                    <|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(rendered, expected);
}

#[test]
fn smollm2_template_adds_default_system_prompt() {
    let rendered = render(SMOLLM2_TEMPLATE, &[Message::new("user", "Hi")]).unwrap();
    let expected = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by \
                    Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
                    <|im_start|>assistant\n";
    assert_eq!(rendered, expected);
}

#[test]
fn smollm2_gguf_template_matches_fixture() {
    let Some(path) = std::env::var_os("STRATA_TEST_GGUF") else {
        eprintln!("skipped: set STRATA_TEST_GGUF to SmolLM2-135M-Instruct's GGUF file");
        return;
    };
    let content = Content::read(&mut File::open(path).expect("open gguf")).expect("read gguf");
    let source = content.metadata["tokenizer.chat_template"]
        .to_string()
        .unwrap();
    assert_eq!(source, SMOLLM2_TEMPLATE);
    let expected = render(SMOLLM2_TEMPLATE, &system_and_user()).unwrap();
    assert_eq!(render(source, &system_and_user()).unwrap(), expected);
}

#[test]
fn default_system_found_in_slot() {
    let source = "{% if messages[0].role != 'system' %}<sys>Be kind.</sys>{% endif %}\
                  {% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}";
    let template = ChatTemplate::new(source, None, None).unwrap();
    assert_eq!(
        template.default_system(),
        None,
        "the default is outside the system slot"
    );

    let source = "{% if messages[0].role == 'system' %}<sys>{{ messages[0].content }}</sys>\
                  {% else %}<sys>Be kind.</sys>{% endif %}\
                  {% for m in messages %}{% if m.role != 'system' %}<u>{{ m.content }}</u>{% endif %}{% endfor %}";
    let template = ChatTemplate::new(source, None, None).unwrap();
    assert_eq!(template.default_system().as_deref(), Some("Be kind."));

    assert_eq!(ChatTemplate::chatml().default_system(), None);

    let smollm2 = ChatTemplate::new(SMOLLM2_TEMPLATE, Some("<s>"), Some("</s>")).unwrap();
    assert_eq!(
        smollm2.default_system().as_deref(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
}
