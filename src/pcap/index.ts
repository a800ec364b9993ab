// Capture files: streaming reader (pcap, pcapng), link-layer parsing,
// classic pcap writer, the offline rewrite, and synthetic captures.
export { PcapError, type PcapErrorCode, type PcapPosition } from './errors.js';
export { MAX_RECORD_LENGTH, MICROSECONDS, NANOSECONDS, type CaptureInterface, type CaptureRecord, type WritableRecord } from './record.js';
export { CaptureReader, DEFAULT_BATCH_SIZE, openCapture, type CaptureFormat, type ReaderOptions } from './reader.js';
export { LINKTYPE, ETHERTYPE, isSupportedLinkType, linkTypeName, locateL3, locateRecordL3, type L3Location } from './linklayer.js';
export {
  DEFAULT_SNAP_LENGTH, PcapWriter, classicOptionsFor, createPcapWriter, precisionFor, type TimestampPrecision, type WriterOptions,
} from './writer.js';
export { CAPTURE_BATCH, CAPTURE_SLOT_SIZE, rewriteCapture, type RewriteCaptureOptions, type RewriteCaptureResult, type RewriteProgress } from './rewrite-capture.js';
export { GENERATED, buildIpPacket, ethernetFrame, generateCapture, type GenerateOptions, type GenerateSummary, type PacketSpec } from './generate.js';
