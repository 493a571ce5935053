"""Times llama.cpp (llama-cpp-python) on the same GGUF, system prompt and
questions as `voxline bench llm`: a warm-up on another prompt, the first
question cold (its system prompt not yet cached), the rest warm (the
prompt prefix reused from the KV cache), each greedy. One JSON object per
question on stdout: first (s), tokens, gen (s after the first token)."""
import json
import sys
import time

from llama_cpp import Llama

model, system_file, questions_file, max_tokens, threads = sys.argv[1:6]
system = open(system_file).read()
questions = [q.strip() for q in open(questions_file) if q.strip() and not q.startswith("#")]
llm = Llama(model_path=model, n_ctx=2048, n_threads=int(threads), n_threads_batch=int(threads), verbose=False)


def ask(sys_prompt, question, n):
    t0 = time.perf_counter()
    first = None
    tokens = 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "system", "content": sys_prompt}, {"role": "user", "content": question}],
        max_tokens=n,
        temperature=0.0,
        stream=True,
    ):
        delta = chunk["choices"][0]["delta"].get("content")
        if delta:
            if first is None:
                first = time.perf_counter() - t0
            tokens += 1
    total = time.perf_counter() - t0
    return {"first": first or total, "tokens": tokens, "gen": total - (first or total)}


ask("You are a test.", "Hello", 4)
for q in questions:
    print(json.dumps(ask(system, q, int(max_tokens))), flush=True)
