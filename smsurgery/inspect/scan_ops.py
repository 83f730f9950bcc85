"""The ops `scan` reports, by category, with the reason each is risky.

The first tables are the ones scan has always had. `ADDED_*` (issue 11) came
from one pass over TensorFlow 2.21's op registry (`tf.raw_ops`, 1,910 op
types) for file, network, code-execution and debug ops that were missing;
each table says why its ops are there. Ops that look related but were left
out on purpose, and why:
- summary ops that only build a `Summary` proto (ScalarSummary,
  HistogramSummary, ImageSummary, AudioSummary, MergeSummary, TensorSummary):
  no I/O until a Write*Summary op, which is listed;
- `IdentityReader` and the reader counters (ReaderNumRecordsProduced, ...):
  they read nothing;
- TPU embedding `Load*Parameters`/`Retrieve*Parameters`: TPU memory, not files;
- ShardedFilename/ShardedFilespec: string formatting only;
- Assert/CheckNumerics: their message goes back to the caller, not a file.
"""

from __future__ import annotations

FILE_SYSTEM = "file system"
CODE = "code execution"
NETWORK = "network"
DEBUG = "debug"
OUTPUT = "output"

_FILE_OPS = {
    "ReadFile": "reads a file",
    "WriteFile": "writes a file",
    "MatchingFiles": "lists files matching a pattern",
    "ImmutableConst": "maps a file into memory",
    "Save": "writes a checkpoint",
    "SaveV2": "writes a checkpoint",
    "SaveSlices": "writes a checkpoint",
    "MergeV2Checkpoints": "writes and deletes checkpoint files",
    "Restore": "reads a checkpoint",
    "RestoreV2": "reads a checkpoint",
    "RestoreSlice": "reads a checkpoint",
    "LoadAndRemapMatrix": "reads a checkpoint",
    "GenerateVocabRemapping": "reads vocabulary files",
    "InitializeTableFromTextFile": "fills a table from a text file",
    "InitializeTableFromTextFileV2": "fills a table from a text file",
    "WholeFileReader": "reads files",
    "WholeFileReaderV2": "reads files",
    "TextLineReader": "reads files",
    "TextLineReaderV2": "reads files",
    "TFRecordReader": "reads files",
    "TFRecordReaderV2": "reads files",
    "FixedLengthRecordReader": "reads files",
    "FixedLengthRecordReaderV2": "reads files",
    "LMDBReader": "reads files",
    "TextLineDataset": "reads files",
    "TFRecordDataset": "reads files",
    "TFRecordDatasetV2": "reads files",
    "FixedLengthRecordDataset": "reads files",
    "FixedLengthRecordDatasetV2": "reads files",
    "MatchingFilesDataset": "lists files matching a pattern",
    "ExperimentalMatchingFilesDataset": "lists files matching a pattern",
    "CSVDataset": "reads files",
    "CSVDatasetV2": "reads files",
    "ExperimentalCSVDataset": "reads files",
    "LMDBDataset": "reads files",
    "ExperimentalLMDBDataset": "reads files",
    "SqlDataset": "opens a database file",
    "ExperimentalSqlDataset": "opens a database file",
    "LoadDataset": "reads files",
    "SaveDataset": "writes files",
    "SaveDatasetV2": "writes files",
    "CacheDataset": "may write cache files",
    "CacheDatasetV2": "may write cache files",
    "SnapshotDataset": "writes and reads snapshot files",
    "SnapshotDatasetV2": "writes and reads snapshot files",
    "SnapshotDatasetReader": "reads snapshot files",
    "SnapshotNestedDatasetReader": "reads snapshot files",
    "DatasetToTFRecord": "writes files",
    "ExperimentalDatasetToTFRecord": "writes files",
    "CreateSummaryFileWriter": "writes event files",
    "CreateSummaryDbWriter": "writes a database file",
    "WriteSummary": "writes event files",
    "WriteRawProtoSummary": "writes event files",
    "WriteScalarSummary": "writes event files",
    "WriteHistogramSummary": "writes event files",
    "WriteImageSummary": "writes event files",
    "WriteAudioSummary": "writes event files",
    "WriteGraphSummary": "writes event files",
    "ImportEvent": "writes event files",
}
_CODE_OPS = {
    "PyFunc": "runs a Python function of the exporting process",
    "PyFuncStateless": "runs a Python function of the exporting process",
    "EagerPyFunc": "runs a Python function of the exporting process",
    "MlirPassthroughOp": "runs an embedded MLIR module that scan cannot inspect",
}
_NETWORK_OPS = {
    name: "talks to a remote server"
    for name in (
        "Rpc", "TryRpc", "RpcClient", "RpcCall", "RpcServer", "RpcServerStart", "RpcServerRegister",
        "RpcCheckStatus", "RpcGetValue", "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
        "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2", "GcsConfigureCredentials",
        "GcsConfigureBlockCache", "BigQueryReader", "GenerateBigQueryReaderPartitions",
    )
}  # fmt: skip
_DEBUG_OPS = {
    name: "debug op: with debug_urls it writes files or sends tensors over the network"
    for name in (
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
        "DebugNumericSummaryV2", "Copy", "CopyHost",
    )
}  # fmt: skip


# Issue 11, from the op registry: ops that read or write files.
ADDED_FILE_OPS = {
    **dict.fromkeys(
        ("ReaderRead", "ReaderReadV2", "ReaderReadUpTo", "ReaderReadUpToV2"), "reads files through a reader"
    ),
    **dict.fromkeys(("ReaderRestoreState", "ReaderRestoreStateV2"), "restores a file reader's state"),
    **dict.fromkeys(("FlushSummaryWriter", "CloseSummaryWriter"), "writes event files"),
    "StatsAggregatorSetSummaryWriter": "writes tf.data statistics to event files",
    "CalibrationStatisticsSaver": "writes calibration statistics to a file",
    "DumpTensor": "writes a tensor to a file",
    "DTensorRestoreV2": "reads a checkpoint",
    "RecordInput": "reads files matching a pattern",
    "ListSnapshotChunksDataset": "lists snapshot files",
    "SnapshotChunkDataset": "reads snapshot files",
    "FileSystemSetConfiguration": "changes how the server's file systems behave",
    "Skipgram": "reads a text corpus file",
}
# Issue 11: ops that run code scan cannot see: serialized programs or Python.
ADDED_CODE_OPS = {
    "DatasetFromGraph": "builds a dataset from a serialized graph that scan could not read",
    "DeserializeIterator": "restores an iterator from serialized state, which holds a dataset graph",
    "XlaCallModule": "runs an embedded StableHLO module that scan cannot inspect",
    "_TPUCompileMlir": "compiles an embedded MLIR module that scan cannot inspect",
    "_XlaHostComputeMlir": "runs an embedded MLIR module that scan cannot inspect",
    "XlaCustomCall": "calls a native function registered with XLA, by name",
    "XlaCustomCallV2": "calls a native function registered with XLA, by name",
}
# Issue 11: ops that exchange tensors with other processes or machines.
ADDED_NETWORK_OPS = {
    name: "exchanges tensors with another device, task or machine"
    for name in (
        "RemoteCall", "Send", "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv", "WorkerHeartbeat",
        "CollectiveReduce", "CollectiveReduceV2", "CollectiveReduceV3", "CollectiveGather", "CollectiveGatherV2",
        "CollectiveBcastSend", "CollectiveBcastSendV2", "CollectiveBcastRecv", "CollectiveBcastRecvV2",
        "CollectiveAllToAllV2", "CollectiveAllToAllV3", "CollectiveReduceScatterV2", "CollectivePermute",
        "CollectiveInitializeCommunicator", "CollectiveAssignGroupV2", "DistributedSave",
    )
}  # fmt: skip
# Issue 11: the TF1 print op (PrintV2 was listed, Print was not).
ADDED_OUTPUT_OPS = {"Print": "prints its inputs to the server's stderr"}

# Op type -> (category, why it is reported). Covers saved_model_cli's own
# denylist (ReadFile, WriteFile, PrintV2); the ops in ATTR_JUDGED are judged
# by their attributes (scan's `classify`).
DENYLIST: dict[str, tuple[str, str]] = {
    **{op: (FILE_SYSTEM, why) for op, why in {**_FILE_OPS, **ADDED_FILE_OPS}.items()},
    **{op: (CODE, why) for op, why in {**_CODE_OPS, **ADDED_CODE_OPS}.items()},
    **{op: (NETWORK, why) for op, why in {**_NETWORK_OPS, **ADDED_NETWORK_OPS}.items()},
    **{op: (DEBUG, why) for op, why in _DEBUG_OPS.items()},
    **{op: (OUTPUT, why) for op, why in ADDED_OUTPUT_OPS.items()},
    "PrintV2": (OUTPUT, "prints to the server's log"),
}
ADDED_IN_ISSUE_11 = frozenset({*ADDED_FILE_OPS, *ADDED_CODE_OPS, *ADDED_NETWORK_OPS, *ADDED_OUTPUT_OPS})
ATTR_JUDGED = frozenset({"PrintV2", "DecodeProtoV2", "EncodeProto", "Copy", "CopyHost", "FixedUnigramCandidateSampler"})
SAVED_MODEL_CLI_DENYLIST = frozenset({"ReadFile", "WriteFile", "PrintV2"})
# The checkpoint machinery: expected when only the saver (or nothing) reaches it.
CHECKPOINT_OPS = frozenset(
    {"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints", "Restore", "RestoreV2", "RestoreSlice"}
)
TABLE_FROM_FILE = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
# Ops whose input is a serialized GraphDef that TensorFlow builds and runs: (op, input position).
GRAPH_CARRIERS = {"DatasetFromGraph": 0}
