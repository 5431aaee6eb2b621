"""Chat templates rendered by transformers (tests/it/chat.rs, fixture tests/fixtures/chat/):
the synthetic instruction-tuned Gemma 3 that `saescope synth --family gemma3 --sae-release
gemma-scope-2-270m-it-res` writes (google/gemma-3-270m-it's template and turn tokens),
its `apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)`
as text and as token ids for texts with edge cases; and templates written here that use the
constructs real checkpoints' templates use (Python string methods, namespaces, slices,
loop variables, `is string`, `tojson`), each rendered by transformers' own Jinja environment.

    python scripts/reference_chat.py MODEL_DIR tests/fixtures/chat/reference.json
"""
import json
import sys

TEXTS = [
    "def factorial(n):\n    return 1 if n == 0 else n * factorial(n-1)",
    "  padded on both sides \n",
    "naïve café, 東京",
    "a line\n\nand another",
    "quoting <start_of_turn> inside",
]

# Constructs from Qwen 3's, Llama 3's and others' templates, rendered for one user turn.
CONSTRUCTS = [
    "{%- set ns = namespace(found=false, index=messages|length - 1) %}\n"
    "{%- for message in messages[::-1] %}\n"
    "    {%- set index = (messages|length - 1) - loop.index0 %}\n"
    "    {%- if message.role == 'user' and message.content is string and not message.content.startswith('<tool') %}\n"
    "        {%- set ns.found = true %}{%- set ns.index = index %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|im_start|>' + message.role + '\\n' + message.content.strip() + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n"
    "{{- ns.found }} {{ ns.index }}",
    "{{- bos_token }}\n"
    "{%- for message in messages %}\n"
    "    {%- set content = message['content'] %}\n"
    "    {%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + content | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}",
    "{% for m in messages %}\n  {% if loop.first %}[{{ m.role | upper }}]{% endif %}\n{{ m.content.rstrip() | tojson }} {{ m.content | length }}\n{% endfor %}",
    "{{ {'name': messages[0].role, 'args': [1, 2.5, true, none, 'é<&>']} | tojson }}\n{{ {'a': {'b': [], 'c': [messages[0].content[:5]]}} | tojson(indent=2) }}",
]


def main() -> None:
    model_dir, out = sys.argv[1], sys.argv[2]
    import transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    assert len(tok) > 300, "transformers read the synthetic tokenizer.json"

    def ids_of(x):
        x = x["input_ids"] if hasattr(x, "keys") else x
        return [int(i) for i in x]

    texts = []
    for t in TEXTS:
        messages = [{"role": "user", "content": t}]
        rendered = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = ids_of(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))
        texts.append({"text": t, "rendered": rendered, "ids": ids})
    constructs = []
    for template in CONSTRUCTS:
        for t in TEXTS[:2] + ["  <tool>x</think>\n\nanswer  "]:
            messages = [{"role": "user", "content": t}]
            rendered = tok.apply_chat_template(messages, chat_template=template, add_generation_prompt=True, tokenize=False)
            constructs.append({"template": template, "text": t, "rendered": rendered})
    # One entry a line, so a change shows as the entries it touches.
    lines = lambda xs: ",\n".join(json.dumps(x, ensure_ascii=False) for x in xs)
    with open(out, "w") as f:
        f.write(f'{{"transformers": "{transformers.__version__}",\n"texts": [\n{lines(texts)}\n],\n"constructs": [\n{lines(constructs)}\n]}}\n')


if __name__ == "__main__":
    main()
