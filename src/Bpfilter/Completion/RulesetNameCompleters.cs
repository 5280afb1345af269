using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Completion;

/// <summary>
/// Completes names inside the ruleset or chain a command edits. Tab completion runs no command of the line, so it looks
/// where a value is already known: the bound -Ruleset, -Chain or -UserChain (PowerShell evaluates variables and
/// constants there), or the pipeline element before the command when it is a variable or a list of variables
/// ($rs | Add-BpfRule ...). When neither gives an object (the ruleset comes from a command), it falls back on the names
/// the command line itself gives earlier: -Name of New-BpfChain (chain names) or of New-BpfRule (rule names).
/// </summary>
public abstract partial class EditedObjectCompleter : IArgumentCompleter
{
    private static readonly string[] InputParameters = ["Ruleset", "Chain", "UserChain"];

    protected abstract IEnumerable<string> NamesIn(object edited, IDictionary fakeBoundParameters);

    /// <summary>The command whose -Name arguments earlier on the command line are candidates.</summary>
    protected abstract string NamingCommand { get; }

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var edited = EditedObjects(commandAst, fakeBoundParameters).ToList();
        var names = edited.Count > 0 ? edited.SelectMany(e => NamesIn(e, fakeBoundParameters)) : NamesGivenBefore(commandAst);
        var prefix = wordToComplete.Trim('\'', '"');
        return names.Distinct(StringComparer.Ordinal)
            .Where(n => n.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(Quoted(n), n, CompletionResultType.ParameterValue, n));
    }

    private static IEnumerable<object> EditedObjects(CommandAst command, IDictionary fakeBoundParameters)
    {
        var values = InputParameters.Where(fakeBoundParameters.Contains).Select(p => fakeBoundParameters[p]).ToList();
        if (values.Count == 0 && PreviousElement(command) is CommandExpressionAst { Expression: var expression } && SafeValue(expression) is { } piped)
            values.Add(piped);
        return values.SelectMany(Flatten).Where(v => v is Ruleset or Chain or UserChain);
    }

    private static CommandBaseAst? PreviousElement(CommandAst command)
    {
        if (command.Parent is not PipelineAst pipeline) return null;
        int index = pipeline.PipelineElements.IndexOf(command);
        return index > 0 ? pipeline.PipelineElements[index - 1] : null;
    }

    // Only variables, read without running anything of the command line: $rs, or a list such as $inbound, $web.
    private static object? SafeValue(ExpressionAst expression) => expression switch
    {
        VariableExpressionAst variable when !variable.Splatted => VariableValue(variable.VariablePath.UserPath),
        ArrayLiteralAst list => list.Elements.Select(SafeValue).ToList(),
        _ => null,
    };

    // Completion runs inside a pipeline, so the session's variables are read by a nested one on the same runspace.
    private static object? VariableValue(string name)
    {
        using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
        var values = ps.AddCommand("Get-Variable").AddParameter("Name", name).AddParameter("ValueOnly").AddParameter("ErrorAction", "Ignore").Invoke();
        return values.Count == 0 ? null : values.Cast<object>().ToList();
    }

    private static IEnumerable<object> Flatten(object? value)
    {
        value = value is PSObject ps ? ps.BaseObject : value;
        if (value is IEnumerable list and not string)
            return list.Cast<object?>().SelectMany(Flatten);
        return value is null ? [] : [value];
    }

    private IEnumerable<string> NamesGivenBefore(CommandAst command)
    {
        if (command.Parent is not PipelineAst pipeline) return [];
        int index = pipeline.PipelineElements.IndexOf(command);
        return pipeline.PipelineElements.Take(index + 1)
            .SelectMany(e => e.FindAll(a => a is CommandAst c && c != command
                && string.Equals(c.GetCommandName(), NamingCommand, StringComparison.OrdinalIgnoreCase), searchNestedScriptBlocks: true))
            .Cast<CommandAst>()
            .Select(c => StaticParameterBinder.BindCommand(c, resolve: true).BoundParameters.TryGetValue("Name", out var name) ? name.ConstantValue as string : null)
            .OfType<string>();
    }

    private static string Quoted(string name) => PlainWord().IsMatch(name) ? name : "'" + name.Replace("'", "''") + "'";

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.:/+-]*$")]
    private static partial Regex PlainWord();
}

/// <summary>Chain names (hooked and user chains) of the ruleset or chain the command edits.</summary>
public sealed class ChainNameCompleter : EditedObjectCompleter
{
    protected override string NamingCommand => "New-BpfChain";

    protected override IEnumerable<string> NamesIn(object edited, IDictionary fakeBoundParameters) => edited switch
    {
        Ruleset ruleset => RulesetEditor.ChainNames(ruleset),
        Chain chain => [chain.Name],
        UserChain chain => [chain.Name],
        _ => [],
    };
}

/// <summary>Rule names of the ruleset or chain the command edits; of the chain given by -ChainName when there is one.</summary>
public sealed class RuleNameCompleter : EditedObjectCompleter
{
    protected override string NamingCommand => "New-BpfRule";

    protected override IEnumerable<string> NamesIn(object edited, IDictionary fakeBoundParameters)
    {
        var chainName = fakeBoundParameters.Contains("ChainName") ? fakeBoundParameters["ChainName"] as string : null;
        IEnumerable<(string Chain, IReadOnlyList<Rule> Rules)> chains = edited switch
        {
            Ruleset ruleset => ruleset.Chains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules))
                .Concat(ruleset.UserChains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules))),
            Chain chain => [(chain.Name, chain.Rules)],
            UserChain chain => [(chain.Name, chain.Rules)],
            _ => [],
        };
        return chains.Where(c => chainName is null || c.Chain == chainName).SelectMany(c => c.Rules).Select(r => r.Name).OfType<string>();
    }
}

/// <summary>Hooked chain names only, for the settings that user chains do not have (policy, interface).</summary>
public sealed class HookedChainNameCompleter : EditedObjectCompleter
{
    protected override string NamingCommand => "New-BpfChain";

    protected override IEnumerable<string> NamesIn(object edited, IDictionary fakeBoundParameters) => edited switch
    {
        Ruleset ruleset => ruleset.Chains.Select(c => c.Name),
        Chain chain => [chain.Name],
        _ => [],
    };
}

/// <summary>
/// User chain names, for -Jump and -Goto: a rule is made before the ruleset that holds its target, so they come from
/// the user chains and rulesets held in the session's variables, and from New-BpfChain commands without -Hook anywhere
/// in the script being typed.
/// </summary>
public sealed partial class UserChainNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var inScript = RootOf(commandAst)
            .FindAll(a => a is CommandAst c && string.Equals(c.GetCommandName(), "New-BpfChain", StringComparison.OrdinalIgnoreCase), searchNestedScriptBlocks: true)
            .Select(c => StaticParameterBinder.BindCommand((CommandAst)c, resolve: true).BoundParameters)
            .Where(bound => !bound.ContainsKey("Hook") && bound.TryGetValue("Name", out _))
            .Select(bound => bound["Name"].ConstantValue as string);
        var names = inScript.OfType<string>().Concat(InVariables());
        return names.Distinct(StringComparer.Ordinal)
            .Where(n => n.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n));
    }

    private static Ast RootOf(Ast ast)
    {
        while (ast.Parent is not null) ast = ast.Parent;
        return ast;
    }

    private static IEnumerable<string> InVariables()
    {
        using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
        return ps.AddCommand("Get-Variable").Invoke()
            .Select(v => (v.BaseObject as PSVariable)?.Value)
            .Select(v => v is PSObject p ? p.BaseObject : v)
            .SelectMany(v => v switch
            {
                UserChain chain => [chain.Name],
                Ruleset ruleset => ruleset.UserChains.Select(c => c.Name),
                _ => Enumerable.Empty<string>(),
            })
            .ToList();
    }
}
