"""The pieces of tools/corpus/make_corpus.py, the generator of qmig's corpus
of real QEMU migration streams:

  qmp       QMP and qtest clients
  qemu      which QEMU runs, its processes (Vm) and migration helpers
  guest     deterministic guest memory writes and a model of their result
  scan      the generator's own walk of streams (RAM, commands,
            configuration), built on fuzz/qemu_stream.py
  proxy     a recording TCP proxy for live migrations
  verdict   what a real QEMU destination says of a stream
  recipes   how each kind of stream is made, and its .meta.json
  specs     the streams of corpus/qemu-7.2
"""
