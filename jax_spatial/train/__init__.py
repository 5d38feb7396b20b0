"""Fine-tuning and evaluating a Flax vision-language model on `spatial_qa` shards.

data        grain pipeline: tfds.data_source -> questions -> formats drawn -> tokens
batch       the batch contract (image, text, mask_ar, mask_loss, mask_input) and the loss
tokenizer   a word-level tokenizer trained on the dataset's text
models      registry: `tiny_vlm` (from scratch), `gemma3` (pretrained Gemma 3, extra)
sharding    device mesh (data, fsdp) and parameter shardings from NNX metadata
trainer     the loop: AdamW, warmup-cosine, clipping, accumulation, orbax checkpoints
decode      greedy decoding with a key/value cache; predictions JSONL
evaluate    exact-answer accuracy per task and per format
"""
