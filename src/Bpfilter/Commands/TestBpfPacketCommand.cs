using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;

namespace Bpfilter.Commands;

/// <summary>
/// Runs one packet, built from header fields or given as bytes, through a ruleset's compiled program in the eBPF
/// interpreter (no kernel, no privileges) and says what decided it; with -Kernel, through BPF_PROG_TEST_RUN as well.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "BpfPacket", DefaultParameterSetName = FieldsSet)]
[OutputType(typeof(PacketTestResult))]
public sealed class TestBpfPacketCommand : PSCmdlet
{
    private const string FieldsSet = "Fields", BytesSet = "Bytes";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    public Ruleset? Ruleset { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Chain { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(HookCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Hook { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateNotNullOrEmpty]
    public string Source { get; set; } = PacketFields.DefaultSource;

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = PacketFields.DefaultDestination;

    [Parameter(ParameterSetName = FieldsSet)]
    [ArgumentCompleter(typeof(ProtocolCompleter))]
    [ValidateNotNullOrEmpty]
    public string Protocol { get; set; } = "tcp";

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 65535)]
    public int? SourcePort { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 65535)]
    public int? DestinationPort { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateNotNullOrEmpty]
    public string? TcpFlags { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ArgumentCompleter(typeof(IcmpTypeCompleter))]
    [ValidateNotNullOrEmpty]
    public string? IcmpType { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 255)]
    public int IcmpCode { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(1, 65535 + 14)]
    public int? Length { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 8191)]
    public int FragmentOffset { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 65535)]
    public int? EtherType { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = BytesSet)]
    [Alias("Bytes", "Frame")]
    public byte[] Packet { get; set; } = [];

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 63)]
    public int Dscp { get; set; }

    [Parameter(ParameterSetName = FieldsSet)]
    [ValidateRange(0, 255)]
    public int Ttl { get; set; } = 64;

    [Parameter(ParameterSetName = FieldsSet)]
    public SwitchParameter MoreFragments { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? InInterface { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? OutInterface { get; set; }

    [Parameter]
    public uint Mark { get; set; }

    [Parameter]
    public SwitchParameter Kernel { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(CtStateCompleter))]
    [ValidateNotNullOrEmpty]
    public string? CtState { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(CtDirectionCompleter))]
    [ValidateNotNullOrEmpty]
    public string? CtDirection { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            Hook? hook = null;
            if (Hook is not null)
            {
                if (!HookNames.TryParse(Hook, out var parsed))
                    throw new BpfilterException("HookUnknown", FailureCategory.InvalidArgument,
                        $"'{Hook}' is not a hook: use {string.Join(", ", HookNames.Names)}");
                hook = parsed;
            }
            var chain = Simulator.SelectChain(Ruleset!, Chain, hook);
            CtStates? ctState = CtState is null ? null : Parsed(nameof(CtState), () => CtStateNames.ParseOne(CtState));
            CtDirection? ctDirection = CtDirection is null ? null : Parsed(nameof(CtDirection), () => CtDirectionNames.Parse(CtDirection));
            var context = InInterface is null && OutInterface is null && Mark == 0 && ctState is null && ctDirection is null ? null
                : new PacketContext(InInterface, OutInterface, Mark, ctState, ctDirection);
            var result = ParameterSetName == BytesSet
                ? Simulator.Test(Ruleset!, chain, Packet, Kernel, context)
                : Simulator.Test(Ruleset!, chain, Fields(), Kernel, context);
            WriteObject(result);
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, Ruleset));
        }
    }

    private static T Parsed<T>(string parameter, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (RulesetValidationException e)
        {
            throw new BpfilterException("CtStateInvalid", FailureCategory.InvalidArgument, $"-{parameter}: {e.Message}");
        }
    }

    private PacketFields Fields()
    {
        var protocol = IpProtocol.Parse(Protocol);
        if (TcpFlags is not null && protocol != IpProtocol.Tcp)
            throw new BpfilterException("PacketInvalid", FailureCategory.InvalidArgument, $"-TcpFlags needs -Protocol tcp, not {protocol}");
        if (IcmpType is not null && !protocol.IsIcmp)
            throw new BpfilterException("PacketInvalid", FailureCategory.InvalidArgument, $"-IcmpType needs -Protocol icmp or icmpv6, not {protocol}");
        return new PacketFields
        {
            Source = Source,
            Destination = Destination,
            Protocol = protocol,
            SourcePort = (ushort?)SourcePort,
            DestinationPort = (ushort?)DestinationPort,
            Length = Length,
            FragmentOffset = (ushort)FragmentOffset,
            MoreFragments = MoreFragments,
            Dscp = (byte)Dscp,
            Ttl = (byte)Ttl,
            EtherType = (ushort?)EtherType,
            TcpFlags = TcpFlags is null ? Engine.Rules.TcpFlags.Syn : TcpFlagNames.Parse(TcpFlags),
            IcmpType = IcmpType is null ? null : IcmpTypes.Parse(IcmpType, v6: Source.Contains(':')),
            IcmpCode = (byte)IcmpCode,
        };
    }
}
