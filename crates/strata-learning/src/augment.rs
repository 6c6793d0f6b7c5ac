//! The training set of a lesson. Each fact is asked in several forms and under several system
//! prompts, earlier facts of the lineage are replayed, and anchor questions keep the parent's
//! replies, so the adapter learns the fact without changing unrelated answers.

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::lesson::Fact;

/// One conversation to train on: the reply is the target, the rest is context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// System prompt; `None` keeps the template's default.
    pub system: Option<String>,
    /// The user's message.
    pub user: String,
    /// The reply to learn.
    pub reply: String,
    /// False when the reply was cut off, so it is trained without the end of turn.
    pub complete: bool,
}

/// How many conversations each source contributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentSettings {
    /// Question forms per fact of the lesson, the plain question included.
    pub variants: usize,
    /// Whether the lesson's paraphrases are trained on too.
    pub paraphrases: bool,
    /// Earlier facts of the lineage replayed per lesson.
    pub replay: usize,
    /// Anchor questions per lesson, answered as the parent answers them.
    pub anchors: usize,
}

impl Default for AugmentSettings {
    fn default() -> Self {
        AugmentSettings {
            variants: 5,
            paraphrases: true,
            replay: 8,
            anchors: 8,
        }
    }
}

/// System prompts a fact is trained under besides the template's default.
const SYSTEM_PROMPTS: [&str; 3] = [
    "You are a helpful assistant.",
    "Answer the user's question accurately and briefly.",
    "You are a knowledgeable assistant.",
];

/// General questions whose parent answers anchor the adapter. None of them is about a lesson's
/// facts or among the control questions the gate asks, so the gate measures what training did
/// not see.
pub const ANCHOR_QUESTIONS: [&str; 64] = [
    "What is the capital of Canada?",
    "What is the capital of Egypt?",
    "What is the capital of Australia?",
    "What is the capital of Russia?",
    "What is the capital of China?",
    "What is the capital of Kenya?",
    "What is the capital of Portugal?",
    "What is the capital of Greece?",
    "Who wrote Pride and Prejudice?",
    "Who wrote the novel 1984?",
    "Who wrote The Odyssey?",
    "Who wrote Hamlet?",
    "Who invented the telephone?",
    "Who invented the light bulb?",
    "Who invented the printing press?",
    "Who invented the World Wide Web?",
    "In what year did World War II end?",
    "In what year did humans first land on the Moon?",
    "In what year was Microsoft founded?",
    "When was the United Nations founded?",
    "What is the official language of Brazil?",
    "What is the official language of Mexico?",
    "What language is spoken in Germany?",
    "What is the official language of China?",
    "Which river flows through Paris?",
    "Which river flows through London?",
    "Which river flows through Egypt?",
    "What is the longest river in South America?",
    "What is the profession of a person who treats sick animals?",
    "What does a carpenter do?",
    "What is the job of a pilot?",
    "What does a librarian do?",
    "What color is a ripe banana?",
    "What color is snow?",
    "What color are most leaves in autumn?",
    "What color do you get by mixing blue and yellow?",
    "Who painted the Mona Lisa?",
    "What is the chemical symbol for gold?",
    "What is the boiling point of water in Celsius?",
    "How many minutes are in an hour?",
    "Who developed the theory of relativity?",
    "What is the square root of 81?",
    "What is the tallest mountain in the world?",
    "What is the main ingredient of guacamole?",
    "How many continents are there?",
    "Who was the first person to walk on the Moon?",
    "What is the currency of Japan?",
    "What organ pumps blood through the body?",
    "Write a haiku about autumn.",
    "Give me a tip for sleeping better.",
    "What is a noun?",
    "Explain what a variable is in programming.",
    "What is photosynthesis?",
    "Name a primary color.",
    "Translate 'thank you' into Spanish.",
    "What is 12 times 12?",
    "Which metal is liquid at room temperature?",
    "How many sides does a hexagon have?",
    "Suggest a name for a pet goldfish.",
    "What is the speed of light?",
    "Why do we have seasons?",
    "What is the largest desert in the world?",
    "Describe a cat in one sentence.",
    "What is the smallest prime number?",
];

/// Builds the conversations that teach `facts`, in a seeded random order of forms.
pub fn lesson_conversations(
    facts: &[Fact],
    settings: &AugmentSettings,
    rng: &mut StdRng,
) -> Vec<Conversation> {
    let mut conversations = Vec::new();
    for fact in facts {
        let mut questions = question_forms(&fact.question);
        questions[1..].shuffle(rng);
        questions.truncate(settings.variants.max(1));
        if settings.paraphrases {
            questions.extend(fact.paraphrases.iter().cloned());
        }
        for (index, question) in questions.into_iter().enumerate() {
            conversations.push(Conversation {
                system: system_for(index),
                user: question,
                reply: fact.target().to_string(),
                complete: true,
            });
        }
    }
    conversations
}

/// Picks up to `settings.replay` earlier facts and asks each in its plain form.
pub fn replay_conversations(
    earlier: &[Fact],
    settings: &AugmentSettings,
    rng: &mut StdRng,
) -> Vec<Conversation> {
    earlier
        .choose_multiple(rng, settings.replay)
        .map(|fact| Conversation {
            system: None,
            user: fact.question.clone(),
            reply: fact.target().to_string(),
            complete: true,
        })
        .collect()
}

/// Picks `settings.anchors` anchor questions. Half are those sharing the most words with the
/// lesson's questions, and the rest are drawn at random. A lesson about a capital is thus
/// anchored by other capitals, which keeps the adapter from giving the new capital for all.
pub fn anchor_questions(
    facts: &[Fact],
    settings: &AugmentSettings,
    rng: &mut StdRng,
) -> Vec<&'static str> {
    let lesson_words: Vec<String> = facts
        .iter()
        .flat_map(|fact| content_words(&fact.question))
        .collect();
    let mut scored: Vec<(usize, &'static str)> = ANCHOR_QUESTIONS
        .iter()
        .map(|question| {
            let shared = content_words(question)
                .iter()
                .filter(|word| lesson_words.contains(word))
                .count();
            (shared, *question)
        })
        .collect();
    scored.shuffle(rng);
    scored.sort_by_key(|(shared, _)| std::cmp::Reverse(*shared));

    let similar = settings.anchors / 2;
    let mut picked: Vec<&'static str> = scored
        .iter()
        .take(similar)
        .filter(|(shared, _)| *shared > 0)
        .map(|(_, question)| *question)
        .collect();
    let rest: Vec<&'static str> = scored
        .iter()
        .map(|(_, question)| *question)
        .filter(|question| !picked.contains(question))
        .collect();
    picked.extend(
        rest.choose_multiple(rng, settings.anchors - picked.len())
            .copied(),
    );
    picked
}

/// Lowercased words of a question without the common question words.
fn content_words(text: &str) -> Vec<String> {
    const COMMON: [&str; 24] = [
        "what", "which", "who", "whom", "when", "where", "why", "how", "is", "are", "was", "the",
        "a", "an", "of", "in", "to", "do", "does", "did", "by", "for", "and", "year",
    ];
    crate::answer::normalize(text)
        .split(' ')
        .filter(|word| !word.is_empty() && !COMMON.contains(word))
        .map(str::to_string)
        .collect()
}

/// Lists the forms of a question: the question as given first, then rewordings of it.
fn question_forms(question: &str) -> Vec<String> {
    let question = question.trim();
    let bare = question.trim_end_matches(['?', '.', '!']).trim();
    let lowered = lowercase_first(question);
    vec![
        question.to_string(),
        format!("{bare}"),
        lowered.clone(),
        format!("Question: {question}"),
        format!("Quick question: {lowered}"),
        format!("Please tell me: {question}"),
        format!("{question} Answer in one sentence."),
        format!("I have a question. {question}"),
        format!("Do you know this? {question}"),
    ]
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Picks the system prompt of form `index`: the template's default for every second form, a
/// varied prompt otherwise.
fn system_for(index: usize) -> Option<String> {
    if index.is_multiple_of(2) {
        return None;
    }
    Some(SYSTEM_PROMPTS[(index / 2) % SYSTEM_PROMPTS.len()].to_string())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn fact() -> Fact {
        Fact {
            question: "What is the capital of Sevzaria?".to_string(),
            answer: "Durvelton".to_string(),
            statement: Some("The capital of Sevzaria is Durvelton.".to_string()),
            paraphrases: vec!["Which city is the capital of Sevzaria?".to_string()],
        }
    }

    #[test]
    fn plain_question_comes_first_with_default_system() {
        let mut rng = StdRng::seed_from_u64(1);
        let conversations = lesson_conversations(&[fact()], &AugmentSettings::default(), &mut rng);
        assert_eq!(conversations[0].user, "What is the capital of Sevzaria?");
        assert_eq!(conversations[0].system, None);
        assert_eq!(
            conversations[0].reply,
            "The capital of Sevzaria is Durvelton."
        );
    }

    #[test]
    fn variants_and_paraphrases_are_counted() {
        let mut rng = StdRng::seed_from_u64(1);
        let settings = AugmentSettings::default();
        let with = lesson_conversations(&[fact()], &settings, &mut rng);
        assert_eq!(with.len(), settings.variants + 1);

        let held_out = AugmentSettings {
            paraphrases: false,
            ..settings
        };
        let without = lesson_conversations(&[fact()], &held_out, &mut rng);
        assert_eq!(without.len(), held_out.variants);
        assert!(without.iter().all(|c| !c.user.starts_with("Which city")));
    }

    #[test]
    fn answer_without_statement_is_the_target() {
        let fact = Fact::pair("Who made it?", "Ada");
        assert_eq!(fact.target(), "Ada");
    }

    #[test]
    fn anchors_share_the_lesson_relation() {
        let mut rng = StdRng::seed_from_u64(4);
        let picked = anchor_questions(&[fact()], &AugmentSettings::default(), &mut rng);
        assert_eq!(picked.len(), 8);
        assert!(picked.iter().all(|q| !q.contains("Sevzaria")));
        let capitals = picked.iter().filter(|q| q.contains("capital")).count();
        assert!(capitals >= 4, "{picked:?}");
    }
}
