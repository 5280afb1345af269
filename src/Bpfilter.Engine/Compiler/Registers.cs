using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Fixed register roles for the whole generated program. The parser fills the field registers once, after its
/// last call; rules only read them. Nothing calls a helper between the parser and the epilogue, so r1–r5 hold
/// fields safely. r6–r9 are the parser's own until the rules start.
/// </summary>
internal static class Registers
{
    public const Register Scratch = Register.R0;
    public const Register SourceAddress = Register.R1;      // IPv4 saddr as the 4 wire bytes read little-endian
    public const Register DestinationAddress = Register.R2; // IPv4 daddr, likewise
    public const Register Protocol = Register.R3;           // IPv4 protocol byte
    public const Register SourcePort = Register.R4;         // wire-order u16, or NoPort
    public const Register DestinationPort = Register.R5;    // wire-order u16, or NoPort
    public const Register Verdict = Register.R6;            // the hook's return code once a decision is made
    public const Register CounterSlot = Register.R9;        // the counter slot once decided

    /// <summary>The value the port registers hold when the packet has no ports: equal to no 16-bit port.</summary>
    public const int NoPort = -1;
}

/// <summary>Fixed stack slots (offsets from r10). All are naturally aligned, as the verifier wants.</summary>
internal static class StackSlots
{
    public const short CounterKey = -4;        // u32 key for the counter lookup
    public const short PacketLength = -16;     // u64 bytes to count, stored by the parser
    public const short Dynptr = -32;           // struct bpf_dynptr (16 bytes), netfilter only
    public const short HeaderBuffer = -56;     // 24 bytes: bpf_dynptr_slice's bounce buffer for the IPv4 header
    public const short PortBuffer = -64;       // 8 bytes: the same for the first 4 bytes of TCP/UDP
}
