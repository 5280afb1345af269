using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Returns a copy of a ruleset or chain without the rules at the given positions or with the given names. The input
/// object is immutable and stays as it was; nothing outside the session changes, so there is no -WhatIf.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "BpfRule", DefaultParameterSetName = RulesetByPosition)]
[OutputType(typeof(Ruleset), ParameterSetName = [RulesetByPosition, RulesetByName])]
[OutputType(typeof(Chain), ParameterSetName = [ChainByPosition, ChainByName])]
[OutputType(typeof(UserChain), ParameterSetName = [UserChainByPosition, UserChainByName])]
public sealed class RemoveBpfRuleCommand : PSCmdlet
{
    private const string RulesetByPosition = "RulesetByPosition", RulesetByName = "RulesetByName",
        ChainByPosition = "ChainByPosition", ChainByName = "ChainByName",
        UserChainByPosition = "UserChainByPosition", UserChainByName = "UserChainByName";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RulesetByPosition)]
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RulesetByName)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ChainByPosition)]
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ChainByName)]
    public Chain? Chain { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = UserChainByPosition)]
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = UserChainByName)]
    public UserChain? UserChain { get; set; }

    [Parameter(ParameterSetName = RulesetByPosition)]
    [Parameter(ParameterSetName = RulesetByName)]
    [ArgumentCompleter(typeof(ChainNameCompleter))]
    public string? ChainName { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = RulesetByPosition)]
    [Parameter(Mandatory = true, ParameterSetName = ChainByPosition)]
    [Parameter(Mandatory = true, ParameterSetName = UserChainByPosition)]
    public int[] Position { get; set; } = [];

    [Parameter(Mandatory = true, ParameterSetName = RulesetByName)]
    [Parameter(Mandatory = true, ParameterSetName = ChainByName)]
    [Parameter(Mandatory = true, ParameterSetName = UserChainByName)]
    [ArgumentCompleter(typeof(RuleNameCompleter))]
    public string[] Name { get; set; } = [];

    protected override void ProcessRecord()
    {
        var which = ParameterSetName.EndsWith("ByName", StringComparison.Ordinal) ? RuleSelection.Named(Name) : RuleSelection.AtPositions(Position);
        try
        {
            WriteObject(Ruleset is not null ? RulesetEditor.RemoveRules(Ruleset, ChainName, which)
                : Chain is not null ? RulesetEditor.RemoveRules(Chain, which)
                : RulesetEditor.RemoveRules(UserChain!, which));
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, (object?)Ruleset ?? (object?)Chain ?? UserChain));
        }
    }
}
