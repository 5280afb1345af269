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
    public Verdict Action { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var match = new Match(
                Source is null ? null : Ipv4Prefix.Parse(Source),
                Destination is null ? null : Ipv4Prefix.Parse(Destination),
                Protocol is null ? null : IpProtocol.Parse(Protocol),
                (ushort?)SourcePort,
                (ushort?)DestinationPort);
            WriteObject(new Rule(Name, match, Action));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
