using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Returns a copy of a ruleset or hooked chain with a chain's policy or interface changed. The input object is
/// immutable and stays as it was; nothing outside the session changes, so there is no -WhatIf.
/// </summary>
[Cmdlet(VerbsCommon.Set, "BpfChain", DefaultParameterSetName = RulesetSet)]
[OutputType(typeof(Ruleset), ParameterSetName = [RulesetSet])]
[OutputType(typeof(Chain), ParameterSetName = [ChainSet])]
public sealed class SetBpfChainCommand : PSCmdlet
{
    private const string RulesetSet = "Ruleset", ChainSet = "Chain";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RulesetSet)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ChainSet)]
    public Chain? Chain { get; set; }

    [Parameter(ParameterSetName = RulesetSet, Position = 0)]
    [ArgumentCompleter(typeof(HookedChainNameCompleter))]
    public string? ChainName { get; set; }

    [Parameter]
    [ValidateSet("accept", "drop", IgnoreCase = true)]
    public string? Policy { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? Interface { get; set; }

    protected override void ProcessRecord()
    {
        var policy = Policy is null ? null : Verdict.Parse(Policy);
        try
        {
            WriteObject(Ruleset is not null ? RulesetEditor.SetChain(Ruleset, ChainName, policy, Interface) : RulesetEditor.WithSettings(Chain!, policy, Interface));
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, (object?)Ruleset ?? Chain));
        }
    }
}
