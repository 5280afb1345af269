using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>Builds one rule object from parameters that mirror the YAML match keys.</summary>
[Cmdlet(VerbsCommon.New, "BpfRule")]
[OutputType(typeof(Rule))]
public sealed class NewBpfRuleCommand : PSCmdlet
{
    [Parameter(Position = 0)]
    public string? Name { get; set; }

    [Parameter]
    public string? Source { get; set; }

    [Parameter]
    public string? Destination { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(ProtocolCompleter))]
    public string? Protocol { get; set; }

    [Parameter]
    [ValidateRange(0, 65535)]
    public int? SourcePort { get; set; }

    [Parameter]
    [ValidateRange(0, 65535)]
    public int? DestinationPort { get; set; }

    [Parameter(Mandatory = true)]
    [ArgumentCompleter(typeof(VerdictCompleter))]
    public string Action { get; set; } = "";

    protected override void ProcessRecord()
    {
        try
        {
            var match = new Match
            {
                Source = Source is null ? null : new AddressMatch([IpPrefix.Parse(Source)]),
                Destination = Destination is null ? null : new AddressMatch([IpPrefix.Parse(Destination)]),
                Protocol = Protocol is null ? null : new ProtocolMatch(IpProtocol.Parse(Protocol)),
                SourcePort = SourcePort is int sp ? PortMatch.Single((ushort)sp) : null,
                DestinationPort = DestinationPort is int dp ? PortMatch.Single((ushort)dp) : null,
            };
            WriteObject(new Rule(Name, match, Verdict.Parse(Action)));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
