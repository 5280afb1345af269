using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Tells how what is deployed under a name differs from a ruleset, chain by chain and rule by rule. Writes only the
/// differences (nothing when they agree), so "if (Import-BpfRuleset web.yaml | Compare-BpfRuleset) { ... }" reads as it means.
/// </summary>
[Cmdlet(VerbsData.Compare, "BpfRuleset")]
[OutputType(typeof(RulesetDifference))]
public sealed class CompareBpfRulesetCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    public Ruleset? Ruleset { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    public SwitchParameter IncludeEqual { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var differences = Drift.Compare(Ruleset!, Name);
            WriteObject(IncludeEqual ? differences : differences.Where(d => d.Kind != DifferenceKind.Same), enumerateCollection: true);
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, Ruleset));
        }
    }
}
