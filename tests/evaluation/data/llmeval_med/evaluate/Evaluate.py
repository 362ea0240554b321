# A hand-written stand-in for LLMEval-Med's evaluate/Evaluate.py: the same shape (one f-string per category
# inside getresponse, named prompt_<category>), our own wording. It is read with ast, never run.
def getresponse(key, Question, Sanswer, checklist, Response):
    prompt_医疗知识 = f"""KNOWLEDGE. Question: {Question} Response: {Response} Reference: {Sanswer} Checklist: {checklist} Reply as {{"reason": "...", "score": "[N]"}}"""
    prompt_医疗推理 = f"""REASONING. Question: {Question} Response: {Response} Reference: {Sanswer} Reply with [N]."""
    return prompt_医疗知识 if key == "医疗知识" else prompt_医疗推理
