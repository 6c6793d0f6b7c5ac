"""Checks `strata serve` with the official `openai` package, as a chat front end would use it.

Run by tests/serve.rs as `python openai_client.py BASE_URL SNAPSHOT`; every check asserts, and
the first failure exits non-zero with its message.
"""

import sys
import threading

import openai

BASE_URL, SNAPSHOT = sys.argv[1], sys.argv[2]
MODEL = "smollm2"
client = openai.OpenAI(base_url=BASE_URL, api_key="unused", max_retries=0, timeout=300)


def ask(content, **options):
    """Returns the whole (non-streamed) completion of one user message, greedy by default."""
    options.setdefault("temperature", 0)
    messages = [{"role": "user", "content": content}]
    return client.chat.completions.create(model=MODEL, messages=messages, **options)


def stream(content, **options):
    """Returns the chunks of the streamed completion of one user message."""
    options.setdefault("temperature", 0)
    messages = [{"role": "user", "content": content}]
    return list(client.chat.completions.create(model=MODEL, messages=messages, stream=True, **options))


def pieces(chunks):
    return [c.choices[0].delta.content or "" for c in chunks if c.choices]


def check_plain_and_streamed_answers_agree():
    whole = ask("What is the capital of France?", max_tokens=40)
    choice = whole.choices[0]
    assert "Paris" in choice.message.content, choice.message.content
    assert choice.finish_reason == "stop", choice.finish_reason
    assert whole.usage.completion_tokens > 0, whole.usage
    assert whole.usage.prompt_tokens > 0, whole.usage

    chunks = stream("What is the capital of France?", max_tokens=40)
    assert "".join(pieces(chunks)) == choice.message.content
    assert all(c.usage is None for c in chunks), "usage sent without include_usage"
    assert all(c.choices for c in chunks), "a chunk without choices was sent without include_usage"
    assert chunks[-1].choices[0].finish_reason == "stop"
    print("plain and streamed answers agree:", repr(choice.message.content))


def check_usage_chunk():
    whole = ask("Name three colours.", max_tokens=30)
    chunks = stream("Name three colours.", max_tokens=30, stream_options={"include_usage": True})
    *body, last = chunks
    assert all(c.usage is None for c in body), "usage before the final chunk"
    assert last.choices == [], last
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    assert last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.usage.total_tokens == whole.usage.total_tokens
    print("usage chunk:", last.usage.prompt_tokens, last.usage.completion_tokens)


def check_stop_strings():
    prompt = "Count from 1 to 20, separated by commas."
    answer = ask(prompt, max_tokens=60).choices[0].message.content
    middle = len(answer) // 2
    stop = answer[middle:middle + 7]
    assert len(stop) == 7, (answer, stop)
    assert answer.index(stop) >= 1, (answer, stop)
    expected = answer[: answer.index(stop)]

    chunks = stream(prompt, max_tokens=60, stop=[stop, "never appears"])
    assert "".join(pieces(chunks)) == expected, (pieces(chunks), expected)
    assert chunks[-1].choices[0].finish_reason == "stop"
    whole = ask(prompt, max_tokens=60, stop=stop)
    assert whole.choices[0].message.content == expected
    assert whole.choices[0].finish_reason == "stop"
    print("stop string", repr(stop), "cut the answer to", repr(expected))


def check_max_tokens_edges():
    one = ask("Tell me a story.", max_tokens=1)
    assert one.usage.completion_tokens == 1, one.usage
    assert one.choices[0].finish_reason == "length"
    three = ask("Tell me a story.", max_completion_tokens=3)
    assert three.usage.completion_tokens == 3, three.usage
    assert three.choices[0].finish_reason == "length"
    unbounded = ask("Say hello.", max_tokens=None)
    assert unbounded.choices[0].finish_reason == "stop"
    for value in (0, -1, 10**9):
        try:
            ask("Hi", max_tokens=value)
        except openai.BadRequestError as error:
            assert error.status_code == 400
            assert error.param == "max_tokens", error.body
            assert "max_tokens" in error.message
        else:
            raise AssertionError(f"max_tokens={value} was accepted")
    print("max_tokens edges: 1, 3, null, 0, -1, 10**9 as expected")


def check_bad_requests():
    for options, param in [
        ({"model": "no-such-model"}, "model"),
        ({"temperature": 7}, "temperature"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ]:
        request = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **options}
        try:
            client.chat.completions.create(**request)
        except openai.BadRequestError as error:
            assert error.param == param, (options, error.body)
        else:
            raise AssertionError(f"{options} was accepted")
    print("bad requests name their field")


def check_split_characters():
    prompt = "Translate 'thank you' into Japanese."
    whole = ask(prompt, max_tokens=24).choices[0]
    chunks = stream(prompt, max_tokens=24)
    texts = pieces(chunks)
    assert "".join(texts) == whole.message.content
    assert any(ord(ch) > 0x2FFF for ch in "".join(texts)), "no CJK text to check"
    finish = chunks[-1].choices[0].finish_reason
    for index, text in enumerate(texts):
        if "\ufffd" not in text:
            continue
        # Only a tail cut short by max_tokens may hold bytes that never formed a character.
        assert finish == "length", (index, texts)
        assert index >= len(texts) - 2, (index, texts)
    print("multibyte characters streamed whole:", repr(whole.message.content))


def check_snapshot_fork():
    whole = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the secret word?"}],
        temperature=0,
        max_tokens=20,
        extra_body={"snapshot": SNAPSHOT},
    )
    answer = whole.choices[0].message.content
    assert "pineapple" in answer.lower(), answer
    cached = whole.usage.prompt_tokens_details.cached_tokens
    assert cached > 0, whole.usage
    chunks = list(client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the secret word?"}],
        temperature=0,
        max_tokens=20,
        stream=True,
        extra_body={"snapshot": SNAPSHOT},
    ))
    assert "".join(pieces(chunks)) == answer
    print("forked from snapshot", SNAPSHOT, "with", cached, "cached tokens:", repr(answer))


def check_text_completions_and_models():
    ids = [model.id for model in client.models.list()]
    assert "smollm2:latest" in ids, ids
    whole = client.completions.create(model=MODEL, prompt="One, two, three,", max_tokens=6, temperature=0)
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 6, whole.usage
    chunks = list(client.completions.create(
        model=MODEL, prompt="One, two, three,", max_tokens=6, temperature=0, stream=True
    ))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    print("text completion:", repr(whole.choices[0].text))


def check_sixteen_clients():
    prompts = [f"Write one sentence about the number {n}." for n in range(16)]
    alone = {p: ask(p, max_tokens=24).choices[0].message.content for p in prompts[:4]}
    results, errors = {}, []

    def client_thread(prompt):
        try:
            chunks = stream(prompt, max_tokens=24)
            results[prompt] = "".join(pieces(chunks))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=client_thread, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 16
    for prompt, text in alone.items():
        assert results[prompt] == text, (prompt, results[prompt], text)
    print("16 concurrent clients completed; batched answers equal the answers alone")


for check in [
    check_plain_and_streamed_answers_agree,
    check_usage_chunk,
    check_stop_strings,
    check_max_tokens_edges,
    check_bad_requests,
    check_split_characters,
    check_snapshot_fork,
    check_text_completions_and_models,
    check_sixteen_clients,
]:
    check()
print("all openai client checks passed")
