using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Fixed register roles for the whole generated program. The header parser fills the field registers once;
/// rules only read them. Nothing calls a helper before the epilogue, so r1–r5 hold fields safely.
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
    public const Register PacketStart = Register.R7;
    public const Register PacketEnd = Register.R8;
    public const Register CounterSlot = Register.R9;        // scratch while parsing; the counter slot once decided

    /// <summary>The value the port registers hold when the packet has no ports: equal to no 16-bit port.</summary>
    public const int NoPort = -1;
}
